"""Reward-free runs resume: offline from the learner's gradient step (the same final weights as an
uninterrupted run), online from the env step with every label and the feedback schedule, and after
a real SIGKILL. Tiny runs: offline on a generated MetaWorld reach dataset, online on HalfCheetah
(fast to make), 16-wide networks, no evaluation episodes beyond one."""

from __future__ import annotations

import json

import pytest
import torch

from pbrl import Runner
from pbrl.experiments.cli import main
from pbrl.experiments.collect import CollectConfig, CollectTeacherConfig, collect
from pbrl.experiments.config import TrainConfig, load_run_config, parse_config
from pbrl.run_log import MetricsLog
from pbrl.store import PreferenceStore
from tests.helpers import train_until_round_then_kill

ENV = "metaworld:reach-v3"  # offline (a scripted expert makes the dataset)
ONLINE_ENV = "gym:HalfCheetah-v5"


@pytest.fixture(scope="module")
def tiny_dataset(tmp_path_factory) -> str:
    out = tmp_path_factory.mktemp("data") / "reach.h5"
    config = CollectConfig(
        env=ENV, expert="scripted", weights=(0.0, 1.0), episodes_per_policy=2, max_episode_steps=30, segment_length=10,
        segments=40, pairs=80, out=str(out), teacher=CollectTeacherConfig(type="regret"),
    )
    return str(collect(config, log=lambda _: None))


def offline(dataset: str, run_dir, steps: int) -> TrainConfig:
    """CPL with dropout (the learner's torch RNG matters) whose BC phase ends exactly at the resume point."""
    return parse_config({
        "env": ENV, "steps": steps, "seed": 3, "max_episode_steps": 30, "eval_interval": 20,
        "eval_episodes": 0, "run_dir": str(run_dir), "reward_free": {"dataset": dataset, "holdout": 0.2},
        "learner": {"type": "cpl", "hidden_sizes": [16], "dropout": 0.25, "batch_size": 8, "steps_per_update": 10,
                    "bc_steps": 20, "warmup_steps": 5},
    })


def online(run_dir, steps: int) -> TrainConfig:
    return parse_config({
        "env": ONLINE_ENV, "steps": steps, "seed": 0, "max_episode_steps": 50, "eval_interval": 200,
        "eval_episodes": 1, "log_interval": 50, "run_dir": str(run_dir), "progress": False, "query": {"strategy": "uniform"},
        "feedback": {"budget": 60, "per_round": 20, "first_query_step": 100, "interval": 150, "segment_length": 10},
        "learner": {"type": "ipl", "hidden_sizes": [16], "batch_size": 8, "steps_per_update": 10, "replay_batch_size": 16},
        "reward_free": {"update_interval": 50},
    })


def steps_of(run_dir) -> list[int]:
    return [row["step"] for row in MetricsLog(run_dir / "metrics.jsonl").read()]


def test_offline_resume_gives_the_weights_of_an_uninterrupted_run(tiny_dataset, tmp_path, capsys):
    whole = Runner(offline(tiny_dataset, tmp_path / "whole", 40), tmp_path / "whole")
    whole.train()

    run = tmp_path / "halves"
    Runner(offline(tiny_dataset, run, 20), run).train()
    assert json.loads((run / "checkpoint" / "state.json").read_text())["num_timesteps"] == 20
    with (run / "metrics.jsonl").open("a") as f:  # what a run killed after its step-30 row and mid-write leaves
        f.write(json.dumps({"step": 30, "time": 0.0}) + "\n" + '{"step": 40, "ti')
    assert main(["resume", str(run), "--steps", "40"]) == 0
    assert "gradient steps" in capsys.readouterr().out

    resumed = torch.load(run / "checkpoint" / "learner.pt", weights_only=False)
    expected = whole.learner.state_dict()
    assert resumed["updates"] == expected["updates"] == 40
    for name, tensor in expected["policy"].items():
        assert torch.equal(resumed["policy"][name], tensor), name
    assert resumed["schedule"] == expected["schedule"] and resumed["torch_rng"].equal(expected["torch_rng"])
    assert steps_of(run) == steps_of(tmp_path / "whole") == [0, 10, 20, 30, 40]


def test_online_resume_keeps_labels_schedule_and_update_count(tmp_path):
    Runner(online(tmp_path, 250), tmp_path).train()  # rounds at steps 100 and 250
    before = PreferenceStore(tmp_path / "preferences.sqlite")
    labels_before, updates_before = before.label_rows(), torch.load(tmp_path / "checkpoint" / "learner.pt")["updates"]
    before.close()
    assert len(labels_before) == 40

    trainer = Runner(load_run_config(tmp_path, ["steps=450"]), tmp_path, resume=True)
    assert trainer.learner.updates == updates_before
    summary = trainer.train()  # the third round at step 400

    after = PreferenceStore(tmp_path / "preferences.sqlite")
    assert after.label_rows()[:40] == labels_before and after.counts().labeled == summary["teacher/labeled"] == 60
    rounds = [r[0] for r in after._db.execute("SELECT DISTINCT round FROM queries ORDER BY round")]
    assert rounds == [0, 1, 2]
    rows = MetricsLog(tmp_path / "metrics.jsonl").read()
    steps = [r["step"] for r in rows]
    assert steps == sorted(set(steps)) and set(range(50, 451, 50)) <= set(steps)  # increasing, none lost
    updates_after = [r for r in rows if r["step"] > 250 and "policy/preference_loss" in r]
    assert trainer.learner.updates == updates_before + 10 * len(updates_after) > updates_before
    assert len(trainer.learner.replay.obs) == 450  # IPL's replay: the whole log, old steps and new


def test_online_run_killed_mid_run_resumes_with_every_label(tmp_path):
    run = tmp_path / "run"
    overrides = [f"{k}={v}" for k, v in {
        "env": ONLINE_ENV, "learner.type": "cpl", "steps": 100_000, "max_episode_steps": 50, "eval_interval": 100_000,
        "eval_episodes": 0, "progress": "false", "query.strategy": "uniform", "feedback.budget": 1000,
        "feedback.per_round": 10, "feedback.first_query_step": 100, "feedback.interval": 50,
        "feedback.segment_length": 10, "learner.hidden_sizes": "[16]", "learner.batch_size": 8,
        "learner.steps_per_update": 10, "learner.bc_steps": 10, "run_dir": run,
    }.items()]
    train_until_round_then_kill(overrides, run, deadline_s=60)

    store = PreferenceStore(run / "preferences.sqlite")
    labels_before = store.label_rows()
    store.close()
    saved = json.loads((run / "checkpoint" / "state.json").read_text())
    trainer = Runner(load_run_config(run, [f"steps={saved['num_timesteps'] + 400}"]), run, resume=True)
    trainer.train()

    after = PreferenceStore(run / "preferences.sqlite")
    assert after.label_rows()[: len(labels_before)] == labels_before and after.counts().pending == 0
    assert after.counts().asked > len(labels_before)
    rounds = [r[0] for r in after._db.execute("SELECT DISTINCT round FROM queries ORDER BY round")]
    assert rounds == list(range(len(rounds)))
    steps = steps_of(run)  # the steps after the checkpoint ran again, their old rows gone; a kill mid-round
    # leaves labels the resumed learner trains on at once, logged at the checkpoint's step: the one repeat
    assert steps == sorted(steps) and len(steps) - len(set(steps)) <= 1 and steps[-1] == saved["num_timesteps"] + 400
