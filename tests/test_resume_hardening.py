"""Resume from any kill point, and the run directory's defences: a kill inside the first feedback
round (before any checkpoint), a store that is not the checkpoint's, damaged checkpoint files, and
the warnings a run that cannot use its budget gets at its start."""

from __future__ import annotations

import json
import re
import shutil
import sqlite3
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import pytest

from pbrl import Runner
from pbrl.experiments.cli import main
from pbrl.experiments.config import load_run_config, parse_config
from pbrl.run_log import MetricsLog
from pbrl.store import CorruptStoreError, PreferenceStore, StoreLockedError
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


# ------------------------------------------------------------------ the store and the checkpoint know each other

_FINISHED = [*TINY, "steps=400", "feedback.budget=10"]  # one round at step 300: checkpoints at 300 and at 400


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("finished") / "run"
    Runner(parse_config({}, [*_FINISHED, f"run_dir={run}"]), run).train()
    return run


def _copy(run: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    return copy


def _cli(capsys, *argv: str) -> tuple[int, list[str]]:
    code = main(list(argv))
    return code, [line for line in capsys.readouterr().err.splitlines() if line.strip()]


def _foreign(run: Path) -> None:
    for path in run.glob("preferences.sqlite*"):
        path.unlink()
    PreferenceStore(run / "preferences.sqlite").close()  # a fresh store: another run id


def _older(run: Path) -> None:
    with sqlite3.connect(run / "preferences.sqlite") as db:
        db.execute("DELETE FROM labels WHERE id > 3")


def _missing(run: Path) -> None:
    for path in run.glob("preferences.sqlite*"):
        path.unlink()


@pytest.mark.parametrize("swap, says", [(_missing, "is missing"), (_foreign, "another run"), (_older, "older than")],
                         ids=["missing", "foreign", "older"])
def test_resume_refuses_a_store_that_is_not_the_checkpoints(finished_run, tmp_path, capsys, swap, says):
    run = _copy(finished_run, tmp_path)
    swap(run)
    code, lines = _cli(capsys, "resume", str(run))
    assert code == 2 and len(lines) == 1 and "preferences.sqlite" in lines[-1] and says in lines[-1], lines
    assert "--force" in lines[-1]
    assert not (run / "checkpoint.tmp").exists()  # nothing was trained on it

    code, lines = _cli(capsys, "resume", str(run), "--force")
    assert code == 0 and any("--force" in line and says in line for line in lines), lines


def test_a_store_file_copied_alone_is_whole_after_each_checkpoint(tmp_path):
    run = tmp_path / "run"
    trainer = Runner(parse_config({}, [*_FINISHED, f"run_dir={run}"]), run)
    trainer.train()  # the run's store stays open, as in a run killed after this checkpoint
    shutil.copy(run / "preferences.sqlite", tmp_path / "copy.sqlite")  # the one file the README names
    copied = PreferenceStore(tmp_path / "copy.sqlite")
    assert copied.counts() == trainer.store.counts() and copied.counts().asked == 5
    assert copied.identity().run_id == trainer.store.identity().run_id


def test_export_run_copies_a_run_that_resumes(finished_run, tmp_path, capsys):
    dest = tmp_path / "copy"
    code, _ = _cli(capsys, "export-run", str(finished_run), str(dest))
    assert code == 0 and sorted(p.name for p in dest.glob("preferences.sqlite*")) == ["preferences.sqlite"]
    assert PreferenceStore(dest / "preferences.sqlite").label_rows() == PreferenceStore(finished_run / "preferences.sqlite").label_rows()
    code, lines = _cli(capsys, "resume", str(dest), "--steps", "420")
    assert code == 0, lines
    code, lines = _cli(capsys, "export-run", str(finished_run), str(dest))
    assert code == 2 and "already exists" in lines[-1]


# ------------------------------------------------------------------ a damaged run directory


@pytest.mark.parametrize("name", ["agent.zip", "replay.pkl", "learner.pt", "state.json", "transitions.npz"])
def test_a_damaged_checkpoint_file_falls_back_to_the_previous_checkpoint(finished_run, tmp_path, capsys, name):
    run = _copy(finished_run, tmp_path)
    path = run / "checkpoint" / name
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])  # truncated
    previous = json.loads((run / "checkpoint.prev" / "state.json").read_text())["num_timesteps"]
    assert previous == 300
    code, lines = _cli(capsys, "resume", str(run))
    assert code == 0 and any(name in line and "previous checkpoint" in line for line in lines), lines
    assert json.loads((run / "checkpoint" / "state.json").read_text())["num_timesteps"] == 400
    steps = [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert steps == sorted(steps)

    for folder in ("checkpoint", "checkpoint.prev"):  # both damaged: one line naming the file, nothing run
        path = run / folder / name
        path.write_bytes(path.read_bytes()[:10])
    code, lines = _cli(capsys, "resume", str(run))
    assert code == 2 and len(lines) == 1 and name in lines[-1] and "Traceback" not in "".join(lines), lines


def test_a_locked_store_gives_a_one_line_error_after_the_timeout(tmp_path, monkeypatch, capsys):
    from pbrl import database

    PreferenceStore(tmp_path / "p.sqlite").close()
    monkeypatch.setattr(database, "BUSY_TIMEOUT_S", 0.2)
    holder = sqlite3.connect(tmp_path / "p.sqlite", isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(StoreLockedError, match="locked by another process past the 0.2 s timeout"):
            PreferenceStore(tmp_path / "p.sqlite").set_meta("x", "1")
    finally:
        holder.execute("ROLLBACK")
        holder.close()


def test_garbage_lines_in_metrics_are_skipped_with_a_warning(tmp_path):
    log = MetricsLog(tmp_path / "metrics.jsonl")
    log.write(1, {"a": 1.0})
    with log.path.open("a") as f:
        f.write("garbage\n[1, 2]\n{\"no_step\": 1}\n\x00\x00\n")
    log.write(2, {"a": 2.0})
    with pytest.warns(UserWarning, match="skipped 4 line"):
        rows = log.read()
    assert [r["step"] for r in rows] == [1, 2]


# ------------------------------------------------------------------ a budget the run cannot use, said at its start

@pytest.mark.parametrize("overrides, says", [
    (["feedback.first_query_step=800"], "after the run's end"),
    (["feedback.budget=100"], "unreachable: 3 rounds"),
    (["feedback.segment_length=150"], "longer than the episodes (100 steps)"),
    (["feedback.budget=0"], "no label will be asked"),
], ids=["first round after the end", "budget unreachable", "segments longer than episodes", "budget 0"])
def test_a_run_that_cannot_use_its_budget_is_warned_at_its_start(tmp_path, overrides, says):
    config = parse_config({}, [*TINY, f"run_dir={tmp_path}", *overrides])
    with pytest.warns(UserWarning, match=re.escape(says)):
        runner = Runner(config, tmp_path)
    assert runner.model.num_timesteps == 0  # before the first step


def test_a_run_that_can_use_its_budget_gets_no_warning(tmp_path):
    config = parse_config({}, [*TINY, f"run_dir={tmp_path}"])
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        warnings.filterwarnings("ignore", ".*not within the observation space.*")
        Runner(config, tmp_path)


# ------------------------------------------------------------------ library errors at the command line

def test_a_corrupt_store_reaches_the_cli_as_one_line_and_debug_shows_the_traceback(finished_run, tmp_path, capsys):
    run = _copy(finished_run, tmp_path)
    for path in run.glob("preferences.sqlite*"):
        path.unlink()
    (run / "preferences.sqlite").write_bytes(b"this is not a database" * 100)
    code, lines = _cli(capsys, "resume", str(run))
    assert code == 2 and len(lines) == 1 and "preferences.sqlite" in lines[0] and "not a readable SQLite" in lines[0], lines
    with pytest.raises(CorruptStoreError):
        main(["resume", str(run), "--debug"])


# `pbrl train` SIGKILLing its own process at env step 450 (from the logging callback's on_step).
_KILLED_AT_450 = textwrap.dedent("""
    import os, signal, sys
    from pbrl.agents import callback
    step = callback.LoggingCallback._on_step
    def killing(self):
        if self.num_timesteps >= 450:
            os.kill(os.getpid(), signal.SIGKILL)
        return step(self)
    callback.LoggingCallback._on_step = killing
    from pbrl.experiments.cli import main
    sys.exit(main(["train", *sys.argv[1:]]))
""")


@pytest.mark.parametrize("method", ["sac", "pref-ppo"])
def test_a_run_without_feedback_rounds_checkpoints_every_checkpoint_interval(tmp_path, method):
    """SAC on the true reward has no rounds to checkpoint after, PrefPPO none after its budget is spent
    (step 200 here): killed at step 450 with checkpoint_interval=200, each resumes from step 400 and
    finishes, its metrics holding no step twice."""
    run = tmp_path / "run"
    overrides = ["env=gym:HalfCheetah-v5", "max_episode_steps=100", f"method={method}", "steps=700", "eval_interval=100000", "eval_episodes=1",
                 "progress=false", "log_interval=50", "checkpoint_interval=200", f"run_dir={run}",
                 "agent.hidden_sizes=[16,16]", "agent.batch_size=32"]
    overrides += ["agent.learning_starts=50"] if method == "sac" else [
        "agent.n_envs=1", "agent.n_steps=100", "feedback.first_query_step=100", "feedback.interval=100", "feedback.per_round=5",
        "feedback.budget=10", "feedback.segment_length=10", "learner.hidden_sizes=[16,16]", "learner.max_epochs=5"]
    argv = [a for o in overrides for a in ("--set", o)]
    done = subprocess.run([sys.executable, "-c", _KILLED_AT_450, *argv], capture_output=True, timeout=600)
    assert done.returncode == -9, done.stderr.decode()[-2000:]
    state = json.loads((run / "checkpoint" / "state.json").read_text())
    assert state["num_timesteps"] == 400
    Runner(load_run_config(run), run, resume=True).train()
    steps = [row["step"] for row in MetricsLog(run / "metrics.jsonl").read() if "train/true_episode_return" in row]
    assert steps[-1] == 700 and len(steps) == len(set(steps))
    assert json.loads((run / "checkpoint" / "state.json").read_text())["num_timesteps"] == 700


def test_a_round_on_a_checkpoint_interval_step_is_saved_once(tmp_path, monkeypatch):
    """Feedback rounds at steps 300, 450, 600 and checkpoint_interval=150: every step is checkpointed
    once (the round's checkpoint is the periodic one), and once more at the end."""
    saved = []
    real = Runner.save_checkpoint
    monkeypatch.setattr(Runner, "save_checkpoint", lambda self, step: saved.append(step) or real(self, step))
    Runner(parse_config({}, [*TINY, "checkpoint_interval=150", f"run_dir={tmp_path}"]), tmp_path).train()
    assert saved == [150, 300, 450, 600, 700]
