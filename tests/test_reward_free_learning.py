"""Reward-free learning end to end: a small generated MetaWorld dataset (`pbrl collect`, scripted
expert blended with an untrained policy, regret labels), then CPL vs behaviour cloning and IPL
vs its initial policy, offline; and the online plain loop."""

import numpy as np
import pytest

from pbrl.experiments.collect import CollectConfig, CollectTeacherConfig, collect
from pbrl import Runner
from pbrl.experiments.config import TrainConfig, parse_config
from pbrl.run_log import MetricsLog

ENV = "metaworld:reach-v3"


@pytest.fixture(scope="module")
def reach_dataset(tmp_path_factory) -> str:
    """Five policies from untrained (w = 0) to the scripted expert (w = 1), 4 episodes of 100 steps each."""
    out = tmp_path_factory.mktemp("data") / "reach.h5"
    config = CollectConfig(
        env=ENV, expert="scripted", episodes_per_policy=4, max_episode_steps=100, segment_length=25, segments=400,
        pairs=1500, out=str(out), teacher=CollectTeacherConfig(type="regret"),
    )
    return str(collect(config, log=lambda _: None))


def offline_config(method: str, dataset: str, run_dir, steps: int, seed: int = 0) -> TrainConfig:
    small = {"hidden_sizes": [64, 64], "steps_per_update": 500, "batch_size": 16}
    learner = {
        "cpl": {**small, "dropout": 0.0, "lr": 1e-3, "bc_steps": 500, "warmup_steps": 200},
        "bc": {**small, "dropout": 0.0, "lr": 1e-3},
        "ipl": small,
    }[method]
    return parse_config({
        "env": ENV, "steps": steps, "seed": seed, "max_episode_steps": 100, "eval_interval": steps,
        "eval_episodes": 5, "run_dir": str(run_dir), "reward_free": {"dataset": dataset, "holdout": 0.1},
        "learner": {"type": method, **learner},
    })


def test_cpl_beats_behaviour_cloning_on_the_same_segments(reach_dataset, tmp_path):
    cpl = Runner(offline_config("cpl", reach_dataset, tmp_path / "cpl", 1500), tmp_path / "cpl").train()
    bc = Runner(offline_config("bc", reach_dataset, tmp_path / "bc", 1500), tmp_path / "bc").train()
    assert cpl["eval/true_return"] > bc["eval/true_return"] + 150, (cpl["eval/true_return"], bc["eval/true_return"])
    assert cpl["policy/heldout_accuracy"] > 0.75  # ranks pairs it never trained on
    rows = MetricsLog(tmp_path / "cpl" / "metrics.jsonl").read()
    assert rows[0]["step"] == 0 and rows[-1]["step"] == 1500 and (tmp_path / "cpl" / "checkpoint" / "learner.pt").exists()


def test_ipl_rises_above_its_initial_policy(reach_dataset, tmp_path):
    summary = Runner(offline_config("ipl", reach_dataset, tmp_path, 1000), tmp_path).train()
    initial = MetricsLog(tmp_path / "metrics.jsonl").read()[0]["eval/true_return"]
    assert summary["eval/true_return"] > initial + 100, (initial, summary["eval/true_return"])
    assert summary["policy/heldout_accuracy"] > 0.75


@pytest.mark.parametrize("method, metric", [("cpl", "policy/cpl_loss"), ("ipl", "policy/preference_loss")])
def test_online_loop_collects_labels_and_updates_the_policy(tmp_path, method, metric):
    learner = {
        "cpl": {"hidden_sizes": [16], "batch_size": 8, "steps_per_update": 20, "bc_steps": 20, "warmup_steps": 5},
        "ipl": {"hidden_sizes": [16], "batch_size": 8, "steps_per_update": 20, "replay_batch_size": 32},
    }[method]
    config = parse_config({
        "env": ENV, "steps": 400, "seed": 0, "max_episode_steps": 50, "eval_interval": 400,
        "eval_episodes": 1, "log_interval": 100, "query": {"strategy": "uniform"},
        "feedback": {"budget": 40, "per_round": 20, "first_query_step": 100, "interval": 150, "segment_length": 10},
        "learner": {"type": method, **learner}, "reward_free": {"update_interval": 50},
    })
    trainer = Runner(config, tmp_path)
    summary = trainer.train()
    assert summary["teacher/labeled"] == 40 and "eval/true_return" in summary
    rows = MetricsLog(tmp_path / "metrics.jsonl").read()
    assert any(metric in r for r in rows) and (tmp_path / "preferences.sqlite").exists()
    if method == "ipl":  # the transition log became the unlabeled replay
        assert trainer.learner.replay is not None and len(trainer.learner.replay.obs) == 400


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_learning_holds_across_seeds(reach_dataset, tmp_path, seed):
    """The two learning checks above, on more seeds and with longer training."""
    def run(method: str, steps: int) -> tuple[float, float]:
        config = offline_config(method, reach_dataset, tmp_path / method, steps, seed=seed)
        summary = Runner(config, tmp_path / method).train()
        return MetricsLog(tmp_path / method / "metrics.jsonl").read()[0]["eval/true_return"], summary["eval/true_return"]

    _, cpl = run("cpl", 3000)
    _, bc = run("bc", 3000)
    ipl_initial, ipl = run("ipl", 3000)
    assert cpl > bc + 100 and ipl > ipl_initial + 100, (cpl, bc, ipl_initial, ipl)
