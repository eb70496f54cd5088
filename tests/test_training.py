"""The whole loop on a real MuJoCo task, tiny: PEBBLE, PrefPPO, the SAC baseline, determinism, kill & resume."""

from __future__ import annotations

import json

import numpy as np

from pbrl import Runner
from pbrl.experiments.config import TrainConfig, load_run_config, parse_config
from pbrl.store import PreferenceStore
from tests.helpers import train_until_round_then_kill

TINY = [
    "env=gym:HalfCheetah-v5", "max_episode_steps=100", "steps=700", "eval_interval=100000", "eval_episodes=1",
    "progress=false", "agent.learning_starts=100", "agent.batch_size=64", "agent.hidden_sizes=[32,32]",
    "feedback.first_query_step=300", "feedback.interval=150", "feedback.per_round=5", "feedback.budget=15",
    "feedback.segment_length=10", "learner.hidden_sizes=[16,16]", "learner.max_epochs=5",
]


def tiny(tmp_path, *extra: str) -> TrainConfig:
    return parse_config({}, [*TINY, f"run_dir={tmp_path}", *extra])


def tiny_sac(tmp_path, *extra: str) -> TrainConfig:
    """The true-reward SAC baseline: TINY without the learner's and the feedback's keys."""
    keep = [o for o in TINY if not o.startswith(("learner.", "feedback."))]
    return parse_config({}, [*keep, "method=sac", f"run_dir={tmp_path}", *extra])


def tiny_ppo(tmp_path, *extra: str) -> TrainConfig:
    """PrefPPO: TINY without SAC's keys, two envs and 64-step rollouts."""
    keep = [o for o in TINY if not o.startswith("agent.")]
    return parse_config({}, [*keep, "method=pref-ppo", "agent.n_envs=2", "agent.n_steps=64", f"run_dir={tmp_path}", *extra])


def test_pebble_run_writes_everything_and_relabels_consistently(tmp_path):
    trainer = Runner(tiny(tmp_path), tmp_path)
    summary = trainer.train()
    counts = PreferenceStore(tmp_path / "preferences.sqlite").counts()
    assert counts.asked == 15 and counts.labeled == 15
    for name in ("config.yaml", "metrics.jsonl", "curves.png", "checkpoint/agent.zip", "checkpoint/replay.pkl",
                 "checkpoint/learner.pt"):
        assert (tmp_path / name).exists(), name
    assert list((tmp_path / "logs").glob("events.out.tfevents*")), "tensorboard events"
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    keys = set().union(*rows)
    for key in ("reward/heldout_accuracy", "reward/true_correlation", "reward/fresh_pair_accuracy", "teacher/asked", "eval/true_return",
                "time/env_steps_per_second", "train/true_episode_return"):
        assert key in keys, key
    assert summary["teacher/asked"] == 15
    # After the run every stored reward is the learner's reward (relabeled after each round,
    # new steps rewarded by the same learner, the just-stored row fixed on the next step).
    buffer, learner = trainer.model.replay_buffer, trainer.learner
    n = buffer.filled()
    assert n > 0
    expected = learner.reward(buffer.observations[:n, 0], buffer.actions[:n, 0], buffer.next_observations[:n, 0])
    np.testing.assert_allclose(buffer.rewards[:n, 0], expected, rtol=1e-4, atol=1e-5)
    assert buffer.intrinsic is None  # pre-training ended at the first round


def test_pref_ppo_and_true_reward_sac_run(tmp_path):
    ppo = Runner(tiny_ppo(tmp_path / "ppo", "steps=1280"), tmp_path / "ppo")
    ppo.train()
    assert PreferenceStore(tmp_path / "ppo" / "preferences.sqlite").counts().labeled == 15
    sac = Runner(tiny_sac(tmp_path / "sac", "steps=300"), tmp_path / "sac")
    summary = sac.train()
    assert sac.learner is None and "eval/true_return" in summary
    assert PreferenceStore(tmp_path / "sac" / "preferences.sqlite").counts().asked == 0


def test_same_seed_same_numbers(tmp_path):
    runs = []
    for name in ("a", "b"):
        config = tiny(tmp_path / name, "steps=500", "feedback.budget=10")
        Runner(config, tmp_path / name).train()
        store = PreferenceStore(tmp_path / name / "preferences.sqlite")
        data, _ = store.dataset()
        rows = [json.loads(x) for x in (tmp_path / name / "metrics.jsonl").read_text().splitlines()]
        runs.append((data, [r.get("reward/train_loss") for r in rows]))
    (a, loss_a), (b, loss_b) = runs
    np.testing.assert_array_equal(a.labels, b.labels)
    np.testing.assert_array_equal(a.left.obs, b.left.obs)
    assert loss_a == loss_b


def test_killed_run_resumes_with_every_label_and_its_schedule(tmp_path):
    run = tmp_path / "run"
    overrides = [*TINY, f"run_dir={run}", "steps=1400", "feedback.budget=40", "feedback.interval=200"]
    train_until_round_then_kill(overrides, run)

    before = PreferenceStore(run / "preferences.sqlite")
    labels_before = before.label_rows()
    asked_before = before.counts().asked
    assert 10 <= asked_before < 30
    saved = json.loads((run / "checkpoint" / "state.json").read_text())

    trainer = Runner(load_run_config(run), run, resume=True)
    assert trainer.model.num_timesteps == saved["num_timesteps"]
    trainer.train()

    after = PreferenceStore(run / "preferences.sqlite")
    assert after.label_rows()[: len(labels_before)] == labels_before  # every old label, unchanged
    # rounds at steps 300, 500, …, 1300: six rounds of five queries, as if never interrupted
    assert after.counts().asked == 30 and after.counts().pending == 0
    rounds = [r[0] for r in after._db.execute("SELECT DISTINCT round FROM queries ORDER BY round")]
    assert rounds == list(range(len(rounds)))  # the schedule continued: no round repeated or lost
    first_new_round_step = saved["loop"]["next_round_step"]
    steps_of_rounds = [r["step"] for r in after_metrics(run) if "teacher/asked" in r and "reward/train_loss" in r]
    assert any(s >= first_new_round_step for s in steps_of_rounds)
    logged = [r["step"] for r in after_metrics(run)]
    assert logged == sorted(logged)  # the killed run's rows after its checkpoint were dropped, not repeated


def after_metrics(run):
    return [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]


def test_resume_drops_the_metrics_rows_written_after_the_checkpoint(tmp_path):
    Runner(tiny(tmp_path, "steps=400", "feedback.budget=5"), tmp_path).train()
    with (tmp_path / "metrics.jsonl").open("a") as f:  # what a run killed after its checkpoint leaves behind
        f.write(json.dumps({"step": 450, "time": 0.0, "stale": 1.0}) + "\n" + '{"step": 46')
    Runner(load_run_config(tmp_path, ["steps=500"]), tmp_path, resume=True).train()
    rows = after_metrics(tmp_path)
    assert not any("stale" in r for r in rows) and rows[-1]["step"] == 500
    assert [r["step"] for r in rows] == sorted(r["step"] for r in rows)


def test_resume_after_a_kill_between_the_checkpoint_renames(tmp_path):
    Runner(tiny(tmp_path, "steps=400", "feedback.budget=5"), tmp_path).train()
    (tmp_path / "checkpoint").rename(tmp_path / "checkpoint.old")  # the state a kill mid-swap leaves
    (tmp_path / "checkpoint.tmp").mkdir()
    trainer = Runner(load_run_config(tmp_path, ["steps=500"]), tmp_path, resume=True)
    assert trainer.model.num_timesteps == 400  # the last complete checkpoint, not a fresh agent
    trainer.train()
    assert trainer.model.num_timesteps == 500 and not (tmp_path / "checkpoint.tmp").exists()


def test_pref_ppo_resumes_with_its_reward_normalisation(tmp_path):
    config = tiny_ppo(tmp_path, "steps=512", "feedback.first_query_step=128")
    first = Runner(config, tmp_path)
    first.train()
    ret_rms = first.model.get_env().ret_rms.var.copy()
    resumed = Runner(load_run_config(tmp_path, ["steps=768"]), tmp_path, resume=True)
    np.testing.assert_allclose(resumed.model.get_env().ret_rms.var, ret_rms)
    resumed.train()
    assert resumed.model.num_timesteps == 768
    assert PreferenceStore(tmp_path / "preferences.sqlite").counts().asked == 15
