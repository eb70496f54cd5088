"""Atomic run checkpoints: a run directory holds a complete ``checkpoint/`` or the previous one,
never half of one, whatever moment a kill strikes.

A writer fills a fresh ``checkpoint.tmp/`` and swaps it in with two renames
(``checkpoint`` → ``checkpoint.old``, ``checkpoint.tmp`` → ``checkpoint``). A kill between
the two leaves only ``checkpoint.old``, which :func:`recover_interrupted_swap` puts back
before a resume reads it. Both trainers (SB3 runs and reward-free runs) write through here.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


@contextmanager
def atomic_checkpoint(run_dir: Path) -> Iterator[Path]:
    """Yield an empty folder to write a checkpoint into; on a clean exit it becomes ``run_dir/checkpoint``."""
    final, tmp, old = (Path(run_dir) / n for n in ("checkpoint", "checkpoint.tmp", "checkpoint.old"))
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    yield tmp
    if final.exists():
        final.rename(old)
    tmp.rename(final)
    shutil.rmtree(old, ignore_errors=True)


def recover_interrupted_swap(run_dir: Path) -> None:
    """A kill between the two renames of :func:`atomic_checkpoint` leaves only ``checkpoint.old``
    (the previous complete checkpoint) and ``checkpoint.tmp`` (complete or not): keep the old one."""
    final, old = Path(run_dir) / "checkpoint", Path(run_dir) / "checkpoint.old"
    if not final.exists() and old.exists():
        old.rename(final)


def checkpoint_state(run_dir: Path) -> dict[str, Any] | None:
    """The ``state.json`` of the run's last complete checkpoint (after recovering an interrupted
    swap), or None when the run never wrote one."""
    recover_interrupted_swap(run_dir)
    path = Path(run_dir) / "checkpoint" / "state.json"
    return json.loads(path.read_text()) if path.exists() else None
