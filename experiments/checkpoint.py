"""Run checkpoints and the run directory's integrity: a run directory always holds a complete,
verifiable checkpoint (or none yet), whatever moment a kill strikes and whatever a disk or a
careless copy did to the newest one.

A writer fills a fresh ``checkpoint.tmp/``, lists every file it wrote with its size and SHA-256 in
``manifest.json`` (written last), and swaps it in with two renames (``checkpoint`` →
``checkpoint.prev``, ``checkpoint.tmp`` → ``checkpoint``). The previous checkpoint is kept until the
next swap, so :func:`latest_checkpoint` falls back to it when the newest is damaged (a truncated
``agent.zip``, ``replay.pkl``, ``learner.pt``, ``state.json``, ``transitions.npz``), saying so; when
both are damaged it names the file at fault. Checkpoints written before manifests are read as they are.

The checkpoint also records its preference store's identity (:class:`~pbrl.store.StoreIdentity`);
:func:`check_store` refuses a store that is missing, another run's, or older than the checkpoint.
:func:`export_run` copies a run directory whole while it may be running (the store through SQLite's
backup API, the checkpoint as of its last swap).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any

from pbrl.store import PreferenceStore, StoreIdentity

STORE = "preferences.sqlite"


class RunDirError(RuntimeError):
    """A run directory (or a file in it) cannot be used as it is; the message names the file and what to do."""


def _digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


@contextmanager
def atomic_checkpoint(run_dir: Path) -> Iterator[Path]:
    """Yield an empty folder to write a checkpoint into; on a clean exit it becomes ``run_dir/checkpoint``
    (with its manifest) and the one it replaces ``run_dir/checkpoint.prev``."""
    final, tmp, prev = (Path(run_dir) / n for n in ("checkpoint", "checkpoint.tmp", "checkpoint.prev"))
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    yield tmp
    files = {p.name: {"bytes": p.stat().st_size, "sha256": _digest(p)} for p in sorted(tmp.iterdir()) if p.is_file()}
    (tmp / "manifest.json").write_text(json.dumps(files))
    if final.exists():
        shutil.rmtree(prev, ignore_errors=True)
        final.rename(prev)
    tmp.rename(final)


def recover_interrupted_swap(run_dir: Path) -> None:
    """A kill between the two renames of :func:`atomic_checkpoint` leaves no ``checkpoint`` but the previous
    complete one (``checkpoint.prev``; ``checkpoint.old`` from pbrl before it kept one — then the newest, as
    that pbrl deleted it after each swap) and ``checkpoint.tmp`` (complete or not): the previous one is put back."""
    final = Path(run_dir) / "checkpoint"
    for name in ("checkpoint.old", "checkpoint.prev"):
        if not final.exists() and (Path(run_dir) / name).exists():
            (Path(run_dir) / name).rename(final)


def damage(folder: Path) -> str | None:
    """What is wrong with the checkpoint in ``folder`` (None: nothing): a file missing, of the wrong size or
    content against its manifest, or a ``state.json`` that is not JSON."""
    manifest = folder / "manifest.json"
    if manifest.exists():
        try:
            files = json.loads(manifest.read_text())
        except ValueError:
            return f"{manifest} is not JSON"
        for name, expected in files.items():
            path = folder / name
            if not path.exists():
                return f"{path} is missing"
            if path.stat().st_size != expected["bytes"]:
                return f"{path} has {path.stat().st_size} bytes, {expected['bytes']} were written (truncated?)"
            if _digest(path) != expected["sha256"]:
                return f"{path} does not hold what was written (its SHA-256 differs from manifest.json)"
    try:
        state = json.loads((folder / "state.json").read_text())
    except FileNotFoundError:
        return f"{folder / 'state.json'} is missing"
    except ValueError:
        return f"{folder / 'state.json'} is not JSON"
    if not isinstance(state, dict) or not isinstance(state.get("num_timesteps"), int):
        return f"{folder / 'state.json'} has no num_timesteps"
    return None


def latest_checkpoint(run_dir: Path) -> tuple[Path, dict[str, Any]] | None:
    """The folder and ``state.json`` of the run's newest undamaged checkpoint (None when the run never
    wrote one); falls back to ``checkpoint.prev`` when the newest is damaged, saying so on stderr."""
    run_dir = Path(run_dir)
    recover_interrupted_swap(run_dir)
    newest, prev = run_dir / "checkpoint", run_dir / "checkpoint.prev"
    if not newest.exists():
        return None
    problem = damage(newest)
    if problem is None:
        return newest, json.loads((newest / "state.json").read_text())
    if prev.exists() and damage(prev) is None:
        state = json.loads((prev / "state.json").read_text())
        print(f"pbrl: {problem}; resuming from the previous checkpoint ({prev.name}, step {state['num_timesteps']}) "
              "instead — the steps after it run again, no label is lost", file=sys.stderr, flush=True)
        return prev, state
    raise RunDirError(f"{problem}, and there is no undamaged previous checkpoint; restore {run_dir} from a copy "
                      f"(pbrl export-run), or move {newest} aside to restart the run from step 0 with every label")


def checkpoint_state(run_dir: Path) -> dict[str, Any] | None:
    """The ``state.json`` of the run's checkpoint to resume from (see :func:`latest_checkpoint`), or None."""
    found = latest_checkpoint(run_dir)
    return found[1] if found else None


def check_store(run_dir: Path, recorded: dict[str, Any] | None, force: bool) -> PreferenceStore:
    """Open the run's preference store, refusing one that does not belong to the checkpoint (``recorded``:
    the identity its ``state.json`` holds; None for a fresh run or a checkpoint older than identities).
    With ``force`` the store is used as it is, and what that means is printed."""
    path = Path(run_dir) / STORE
    expected = StoreIdentity(**recorded) if recorded else None
    if expected is not None and not path.exists():  # checked before opening, which would create an empty one
        _refuse_unless(force, f"{path} is missing (the checkpoint was written with {expected.answered} answered queries)")
        return PreferenceStore(path)
    store = PreferenceStore(path)
    found = store.identity()
    if expected is None:
        return store
    if found.run_id != expected.run_id:
        problem = f"{path} belongs to another run (run id {found.run_id}, the checkpoint's is {expected.run_id})"
    elif found.answered < expected.answered or found.last_round < expected.last_round:
        problem = (f"{path} is older than the checkpoint ({found.answered} answered queries up to round "
                   f"{found.last_round}; the checkpoint was written with {expected.answered} up to round {expected.last_round})")
    else:
        return store
    if not force:
        store.close()
    _refuse_unless(force, problem)
    return store


def _refuse_unless(force: bool, problem: str) -> None:
    """Refuse the store (a one-line :class:`RunDirError`), or with ``force`` say what continuing with it means."""
    if not force:
        raise RunDirError(f"{problem}: put the run's own store back (a copy made by `pbrl export-run`), "
                          "or `pbrl resume --force` to continue with this one")
    print(f"pbrl: --force: {problem}; continuing with it: the agent and learner keep what the checkpoint holds, "
          "the budget counts only the queries in this store, and rounds it lacks are asked anew", file=sys.stderr, flush=True)


def store_identity(store: PreferenceStore) -> dict[str, Any]:
    """The store's identity as a checkpoint records it (after moving its WAL into the main file)."""
    store.flush()
    return asdict(store.identity())


def _copy_checkpoint(run_dir: Path, dest: Path, attempts: int = 5) -> None:
    """Copy the newest undamaged checkpoint of a run that may be swapping one in right now, touching nothing
    in ``run_dir`` (a swap mid-copy renames the folder away: copy again)."""
    for _ in range(attempts):
        for name in ("checkpoint", "checkpoint.old", "checkpoint.prev"):
            folder = run_dir / name
            try:
                if folder.exists() and damage(folder) is None:
                    shutil.copytree(folder, dest)
                    if damage(dest) is None:
                        return
            except (FileNotFoundError, shutil.Error):
                pass
            shutil.rmtree(dest, ignore_errors=True)
    if any((run_dir / name).exists() for name in ("checkpoint", "checkpoint.old", "checkpoint.prev")):
        raise RunDirError(f"no undamaged checkpoint of {run_dir} could be copied; see `pbrl resume {run_dir}` for why")


def export_run(run_dir: Path, dest: Path) -> Path:
    """Copy a run directory to ``dest`` whole, also while the run is writing: the store through SQLite's
    backup API (a consistent snapshot with every committed row, WAL included), the newest undamaged
    checkpoint as of its last swap, every other file as it is; nothing in ``run_dir`` is changed. Returns ``dest``."""
    run_dir, dest = Path(run_dir), Path(dest)
    if not (run_dir / "config.yaml").exists():
        raise RunDirError(f"{run_dir} is not a pbrl run directory (no config.yaml)")
    if dest.exists():
        raise RunDirError(f"{dest} already exists; pick a new destination")
    skip = {STORE, f"{STORE}-wal", f"{STORE}-shm", "checkpoint", "checkpoint.tmp", "checkpoint.prev", "checkpoint.old"}
    shutil.copytree(run_dir, dest, ignore=lambda folder, names: skip if Path(folder) == run_dir else set())
    _copy_checkpoint(run_dir, dest / "checkpoint")
    if (run_dir / STORE).exists():
        source = sqlite3.connect(run_dir / STORE, timeout=30.0)
        target = sqlite3.connect(dest / STORE)
        with target:
            source.backup(target)
        target.execute("PRAGMA journal_mode=DELETE")  # one self-contained file
        source.close()
        target.close()
    return dest
