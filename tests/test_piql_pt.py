"""P-IQL with a Preference Transformer reward (``learner.type=piql-pt``) offline through the Runner: the
reward model trains, and IQL's critic reads each dataset step's reward from its context window — the
reference's relabeling (csmile-1006/PreferenceTransformer ``reward_from_preference_transformer``) —
not the one-step read of a flat transition."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pbrl import Runner
from pbrl.experiments.collect import CollectConfig, CollectTeacherConfig, collect
from pbrl.experiments.config import parse_config
from pbrl.learners import EpisodeRewards, PreferenceIQL, PreferenceTransformer
from pbrl.run_log import MetricsLog

ENV = "metaworld:drawer-open-v3"


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> str:
    config = CollectConfig(
        env=ENV, expert="scripted", weights=(0.0, 1.0), noise=(0.3,), episodes_per_policy=2, max_episode_steps=40,
        segment_length=10, segments=40, pairs=60, out=str(tmp_path_factory.mktemp("data") / "d.h5"),
        teacher=CollectTeacherConfig(type="regret"),
    )
    return str(collect(config, log=lambda _: None))


def test_piql_pt_trains_on_the_windowed_reward(dataset, tmp_path, monkeypatch) -> None:
    served: list[np.ndarray] = []  # per critic call: which rows were found among the dataset's steps
    original = EpisodeRewards.reward_tensor

    def spy(self, obs, actions, next_obs):
        rows = torch.cat([obs, actions], dim=1).float().cpu().numpy()
        served.append(np.array([row.tobytes() in self._index for row in rows]))
        return original(self, obs, actions, next_obs)

    monkeypatch.setattr(EpisodeRewards, "reward_tensor", spy)
    config = parse_config({
        "env": ENV, "steps": 40, "max_episode_steps": 40, "eval_interval": 40, "eval_episodes": 1, "progress": False,
        "run_dir": str(tmp_path), "reward_free": {"dataset": dataset, "holdout": 0.1},
        "learner": {"type": "piql-pt", "hidden_sizes": [32, 32], "batch_size": 8, "window": 8, "steps_per_update": 20,
                    "reward": {"embed_dim": 16, "heads": 2, "preference_dim": 16, "context": 5, "batch_size": 16, "epochs": 3}},
    })
    runner = Runner(config, tmp_path)
    runner.train()
    learner = runner.learner
    assert isinstance(learner, PreferenceIQL) and isinstance(learner.reward, EpisodeRewards)
    assert isinstance(learner.reward.model, PreferenceTransformer) and learner.reward_fit_on > 0
    rows = MetricsLog(tmp_path / "metrics.jsonl").read()
    assert any("policy/reward_model/train_loss" in row for row in rows) and rows[-1]["step"] == 40
    assert served and all(found.all() for found in served)  # every step the critic saw: a dataset step, windowed
    # the served reward of every dataset step is the reference's windowed relabeling, not the one-step read
    episodes, model = runner.engine.data.episodes, learner.reward.model
    windowed = np.concatenate([model.trajectory_rewards(episodes.obs[s : s + n], episodes.actions[s : s + n])
                               for s, n in zip(episodes.start, episodes.length)])
    as_t = lambda a: torch.as_tensor(np.asarray(a, np.float32))  # noqa: E731
    obs, actions, next_obs = as_t(episodes.obs), as_t(episodes.actions), as_t(episodes.next_obs)
    np.testing.assert_allclose(original(learner.reward, obs, actions, next_obs).numpy(), windowed, rtol=1e-5, atol=1e-6)
    assert not np.allclose(model.reward_tensor(obs, actions, next_obs).numpy(), windowed, atol=1e-4)
