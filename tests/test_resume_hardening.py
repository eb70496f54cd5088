"""Resume from any kill point, and the run directory's defences: a kill inside the first feedback
round (before any checkpoint), a store that is not the checkpoint's, damaged checkpoint files, and
the warnings a run that cannot use its budget gets at its start."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

from pbrl import Runner
from pbrl.experiments.config import load_run_config
from pbrl.store import PreferenceStore
from tests.test_training import TINY

# Runs `pbrl train` with the synthetic teacher SIGKILLing its own process the first time it is asked
# to label: the round's segments and queries are in the store, no label is, no checkpoint exists.
_KILLED_IN_LABEL = textwrap.dedent("""
    import os, signal, sys
    from pbrl.teachers.synthetic import SyntheticTeacher
    SyntheticTeacher.label = lambda *args, **kwargs: os.kill(os.getpid(), signal.SIGKILL)
    from pbrl.experiments.cli import main
    sys.exit(main(["train", *sys.argv[1:]]))
""")


def _kill_in_first_round(run: Path, *extra: str) -> None:
    overrides = [*TINY, f"run_dir={run}", *extra]
    argv = [a for o in overrides for a in ("--set", o)]
    done = subprocess.run([sys.executable, "-c", _KILLED_IN_LABEL, *argv], capture_output=True, timeout=600)
    assert done.returncode == -9, done.stderr.decode()[-2000:]


def test_a_kill_inside_round_0_before_any_checkpoint_loses_no_query(tmp_path):
    run = tmp_path / "run"
    _kill_in_first_round(run)
    store = PreferenceStore(run / "preferences.sqlite")
    assert not (run / "checkpoint").exists()
    assert store.counts().asked == 5 and store.counts().pending == 5  # asked, never answered
    killed_queries = store.round_queries(0)

    trainer = Runner(load_run_config(run), run, resume=True)
    trainer.train()

    after = PreferenceStore(run / "preferences.sqlite")
    counts = after.counts()
    assert counts.asked == 15 and counts.pending == 0  # the budget: 3 rounds of 5, as if never killed
    assert after.round_queries(0) == killed_queries  # round 0's queries answered, not asked again
    per_query = after.execute("SELECT query_id, COUNT(*) FROM labels GROUP BY query_id")
    assert len(per_query) == 15 and all(n == 1 for _, n in per_query)  # every query answered exactly once
    rounds = [r[0] for r in after.execute("SELECT DISTINCT round FROM queries ORDER BY round")]
    assert rounds == [0, 1, 2]  # no extra round
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    steps = [r["step"] for r in rows]
    assert steps == sorted(steps)
    round_steps = [r["step"] for r in rows if "teacher/asked" in r and "reward/train_loss" in r]
    assert round_steps == [300, 450, 600]  # the schedule of an uninterrupted run
