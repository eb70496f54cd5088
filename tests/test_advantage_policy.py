"""The greedy-on-Â agent (learner.type=advantage, learner.mode=greedy): its actor ascends a given Â with no critic,
and it trains, checkpoints and resumes inside the Trainer."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch
from stable_baselines3.common.logger import Logger
from stable_baselines3.common.vec_env import DummyVecEnv

from pbrl.agents.advantage_policy import GreedyAdvantageHooks, GreedyAdvantageSAC
from pbrl.agents.config import SACConfig
from pbrl.agents.sac import make_sac
from pbrl.agents.state_entropy import StateEntropyReward

OBS_DIM, ACT_DIM = 3, 2
W = torch.tensor([[0.5, -0.3, 0.2], [0.1, 0.4, -0.5]])  # a*(s) = W s ∈ (−1, 1) for s ∈ [−1, 1]³


class BoxEnv(gym.Env):
    """States in [−1, 1]³, actions in [−1, 1]²; the dynamics do not matter here."""

    observation_space = gym.spaces.Box(-1.0, 1.0, (OBS_DIM,), np.float32)
    action_space = gym.spaces.Box(-1.0, 1.0, (ACT_DIM,), np.float32)

    def reset(self, *, seed=None, options=None):
        return np.zeros(OBS_DIM, np.float32), {}

    def step(self, action):
        return np.zeros(OBS_DIM, np.float32), 0.0, False, False, {}


class QuadraticAdvantage:
    """A hand-made ``Â(s, a) = −‖a − W s‖²``, maximised at ``a*(s) = W s``."""

    device = torch.device("cpu")

    def differentiable_advantage(self, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        return -((actions - obs @ W.T) ** 2).sum(dim=1)


def greedy_agent(pretraining: bool = False) -> GreedyAdvantageSAC:
    config = SACConfig(learning_rate=3e-3, batch_size=64, hidden_sizes=(32, 32), learning_starts=0, init_temperature=0.01)
    model = make_sac(DummyVecEnv([BoxEnv]), config, seed=0, algorithm=GreedyAdvantageSAC)
    model.set_logger(Logger(None, []))
    model.advantage = QuadraticAdvantage()
    model.replay_buffer.intrinsic = StateEntropyReward() if pretraining else None
    rng = np.random.default_rng(0)
    for _ in range(500):
        s, a = rng.uniform(-1, 1, (2, 1, OBS_DIM)).astype(np.float32), rng.uniform(-1, 1, (1, ACT_DIM)).astype(np.float32)
        model.replay_buffer.add(s[0], s[1], a, np.zeros(1), np.zeros(1), [{}])
    return model


def mean_action_error(model: GreedyAdvantageSAC, states: torch.Tensor) -> float:
    with torch.no_grad():
        return (model.actor(states, deterministic=True) - states @ W.T).norm(dim=1).mean().item()


def parameters(module: torch.nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in module.parameters()]


def test_actor_converges_to_the_argmax_of_the_advantage_with_no_critic():
    model = greedy_agent()
    held_out = torch.as_tensor(np.random.default_rng(1).uniform(-1, 1, (256, OBS_DIM)), dtype=torch.float32)
    untrained = mean_action_error(model, held_out)
    critic, target = parameters(model.critic), parameters(model.critic_target)
    for _ in range(4):
        model.train(gradient_steps=100, batch_size=64)
    assert mean_action_error(model, held_out) < 0.1 * untrained  # the actor found a*(s) = W s on unseen states …
    for before, after in zip([*critic, *target], [*model.critic.parameters(), *model.critic_target.parameters()]):
        torch.testing.assert_close(before, after, rtol=0, atol=0)  # … with the critic untouched
    logged = model.logger.name_to_value
    assert logged["train/advantage"] > -0.1 and logged["train/ent_coef"] > 0  # the last 100 steps: Â(s, π(s)) ≈ max Â = 0
    assert "train/critic_loss" not in logged


def test_pretraining_is_pebbles_critic_update_until_the_first_round():
    model = greedy_agent(pretraining=True)
    critic, actor = parameters(model.critic), parameters(model.actor)
    model.train(gradient_steps=5, batch_size=64)
    assert any(not torch.equal(b, a) for b, a in zip(critic, model.critic.parameters()))  # SAC on the intrinsic reward
    assert "train/critic_loss" in model.logger.name_to_value
    GreedyAdvantageHooks(model, SACConfig(reset_update=5)).after_round(learner=None)  # the first round ends pre-training
    assert model.replay_buffer.intrinsic is None and model._n_updates == 10  # … and gives the actor its reset update
    critic = parameters(model.critic)
    model.train(gradient_steps=5, batch_size=64)
    assert all(torch.equal(b, a) for b, a in zip(critic, model.critic.parameters()))
    assert any(not torch.equal(b, a) for b, a in zip(actor, model.actor.parameters()))


def test_greedy_agent_needs_its_advantage():
    model = greedy_agent()
    model.advantage = None
    with pytest.raises(RuntimeError, match="model.advantage = learner"):
        model.train(gradient_steps=1, batch_size=8)


def test_greedy_regret_run_trains_checkpoints_and_resumes(tmp_path):
    from pbrl import Runner
    from pbrl.experiments.config import load_run_config
    from tests.test_training import tiny

    trainer = Runner(tiny(tmp_path, "learner.type=advantage", "learner.mode=greedy", "steps=500", "feedback.budget=10"), tmp_path)
    assert isinstance(trainer.model, GreedyAdvantageSAC) and trainer.model.advantage is trainer.learner
    trainer.train()
    assert trainer.model.replay_buffer.intrinsic is None  # the first round ended pre-training
    progress = (tmp_path / "logs" / "progress.csv").read_text().splitlines()[0].split(",")
    assert {"train/advantage", "train/actor_loss", "train/ent_coef"} <= set(progress)
    actor = parameters(trainer.model.actor)

    resumed = Runner(load_run_config(tmp_path, ["steps=600"]), tmp_path, resume=True)
    model = resumed.model
    assert isinstance(model, GreedyAdvantageSAC) and model.advantage is resumed.learner
    assert model.num_timesteps == 500 and model.replay_buffer.intrinsic is None
    for before, after in zip(actor, model.actor.parameters()):
        torch.testing.assert_close(before, after)
    obs = torch.as_tensor(trainer.model.replay_buffer.observations[:20, 0])
    torch.testing.assert_close(resumed.learner.advantage_tensor(obs, model.actor(obs, deterministic=True)),
                               trainer.learner.advantage_tensor(obs, trainer.model.actor(obs, deterministic=True)))
    critic = parameters(model.critic)
    resumed.train()
    assert model.num_timesteps == 600
    assert all(torch.equal(b, a) for b, a in zip(critic, model.critic.parameters()))
