"""Build a run from a :class:`TrainConfig`, train it, checkpoint it, resume it.

A run directory holds::

    config.yaml          the resolved configuration
    preferences.sqlite   every segment, query and label (durable the moment it exists)
    metrics.jsonl        every logged scalar
    logs/                tensorboard events and progress.csv (SB3 logger)
    checkpoint/          agent, replay buffer, learner, transition log, loop state
                         (replaced atomically after every feedback round and at the end)
"""

from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from stable_baselines3 import PPO, SAC
from stable_baselines3.common.logger import configure
from stable_baselines3.common.utils import set_random_seed
from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize

from pbrl import envs
from pbrl.agents.advantage_policy import GreedyAdvantageHooks, GreedyAdvantageSAC
from pbrl.agents.callback import PreferenceCallback
from pbrl.agents.evaluation import Evaluator
from pbrl.agents.ppo import PPOFeedbackHooks, make_ppo
from pbrl.agents.preference_env import PreferenceVecEnv
from pbrl.agents.sac import SACFeedbackHooks, make_sac
from pbrl.experiments.builders import EnvSpec, build_learner, build_teacher
from pbrl.experiments.checkpoint import atomic_checkpoint, recover_interrupted_swap
from pbrl.experiments.config import ConfigError, TrainConfig, from_dict, load_yaml, save_yaml
from pbrl.experiments.plots import plot_runs
from pbrl.feedback import FeedbackLoop
from pbrl.run_log import MetricsLog
from pbrl.store import PreferenceStore
from pbrl.transitions import TransitionLog


def default_run_dir(config: TrainConfig) -> Path:
    name = config.env.replace(":", "-").replace("/", "-")
    return Path("runs") / f"{name}-{config.method}-s{config.seed}-{time.strftime('%Y%m%d-%H%M%S')}"


class Trainer:
    """Everything a run needs, wired together; ``train()`` runs it to ``config.steps``."""

    def __init__(self, config: TrainConfig, run_dir: Path, resume: bool = False) -> None:
        self.config, self.run_dir = config, Path(run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        torch.set_num_threads(config.torch_threads)
        set_random_seed(config.seed)
        on_policy = config.method == "pref-ppo"
        n_envs = config.ppo.n_envs if on_policy else 1

        venv = DummyVecEnv([self._env_factory(config.seed + i) for i in range(n_envs)])
        probe = venv.envs[0]
        obs_dim, act_dim = probe.observation_space.shape[0], probe.action_space.shape[0]
        checkpoint = self.run_dir / "checkpoint"
        if resume:
            recover_interrupted_swap(self.run_dir)
        resuming = resume and checkpoint.exists()

        self.log = (
            TransitionLog.load(checkpoint / "transitions.npz", config.env)
            if resuming
            else TransitionLog(config.feedback.log_capacity, n_envs, config.env)
        )
        spec = EnvSpec(config.env, obs_dim, act_dim, envs.episode_limit(probe))
        self.learner = build_learner(config, spec)
        self.pref_env = PreferenceVecEnv(venv, self.learner, self.log)
        self.store = PreferenceStore(self.run_dir / "preferences.sqlite")
        self.loop = None
        if self.learner is not None:
            self.loop = FeedbackLoop(
                config.feedback,
                config.query,
                self.learner,
                build_teacher(config, spec),
                self.store,
                self.log,
                spec.episode_length,
                np.random.default_rng(config.seed),
            )
        agent_env = VecNormalize(self.pref_env, norm_obs=False, norm_reward=True, gamma=config.ppo.gamma) if (
            on_policy and config.ppo.normalize_reward
        ) else self.pref_env

        tb = str(self.run_dir / "logs")
        if resuming:
            self.model = self._load_agent(checkpoint, agent_env, on_policy)
        elif on_policy:
            self.model = make_ppo(agent_env, config.ppo, config.seed)
        else:
            sac = replace(config.sac, buffer_size=min(config.sac.buffer_size, config.steps))
            sac = replace(sac, unsupervised_pretraining=sac.unsupervised_pretraining and self.learner is not None)
            self.model = make_sac(agent_env, sac, config.seed, algorithm=_sac_class(config))
        self.model.set_logger(configure(tb, ["csv", "tensorboard"]))
        if isinstance(self.model, GreedyAdvantageSAC):  # the learner is not part of the saved agent
            self.model.advantage = self.learner
            self.hooks = GreedyAdvantageHooks(self.model, config.sac)
        else:
            self.hooks = PPOFeedbackHooks() if on_policy else SACFeedbackHooks(self.model, config.sac)
        self.metrics = MetricsLog(self.run_dir / "metrics.jsonl")
        if resuming:
            self._restore_loop(checkpoint)
        save_yaml(config, self.run_dir / "config.yaml")

        evaluator = None
        if config.eval_episodes > 0:
            eval_env = envs.make(config.env, seed=config.seed + 10_000, max_episode_steps=config.max_episode_steps)
            evaluator = Evaluator(eval_env, config.eval_episodes, seed=config.seed + 10_000)
        self.callback = PreferenceCallback(
            self.loop, self.pref_env, self.hooks, self.metrics, config.steps, on_policy, evaluator,
            config.eval_interval, config.log_interval, checkpoint=self.save_checkpoint, progress=config.progress,
        )

    def _env_factory(self, seed: int):
        return lambda: envs.make(self.config.env, seed=seed, max_episode_steps=self.config.max_episode_steps)

    # ------------------------------------------------------------------ training
    def train(self) -> dict[str, float]:
        remaining = self.config.steps - self.model.num_timesteps
        started = time.perf_counter()
        if remaining > 0:
            self.model.learn(remaining, callback=self.callback, reset_num_timesteps=self.model.num_timesteps == 0)
        self.save_checkpoint()
        plot_runs([self.run_dir], self.run_dir / "curves.png")
        summary = dict(self.callback.last)
        summary["time/wall_seconds"] = time.perf_counter() - started
        summary["steps"] = float(self.model.num_timesteps)
        return summary

    # ------------------------------------------------------------------ checkpoints
    def save_checkpoint(self) -> None:
        """Write a complete checkpoint next to the old one, then swap (a kill never leaves half of one)."""
        with atomic_checkpoint(self.run_dir) as tmp:
            self.model.save(tmp / "agent.zip")
            if isinstance(self.model, SAC):
                self.model.save_replay_buffer(tmp / "replay.pkl")
            if isinstance(self.model.get_env(), VecNormalize):
                self.model.get_env().save(str(tmp / "vecnormalize.pkl"))
            self.log.save(tmp / "transitions.npz")
            if self.learner is not None:
                torch.save(self.learner.state_dict(), tmp / "learner.pt")
            state = {
                "num_timesteps": int(self.model.num_timesteps),
                "loop": self.loop.state_dict() if self.loop else None,
                "trained_labels": self.store.counts().labeled,
                "episode_returns": list(self.pref_env.episode_returns),
                "episode_successes": list(self.pref_env.episode_successes),
            }
            (tmp / "state.json").write_text(json.dumps(state))

    def _load_agent(self, checkpoint: Path, agent_env, on_policy: bool):
        if isinstance(agent_env, VecNormalize):
            agent_env = VecNormalize.load(str(checkpoint / "vecnormalize.pkl"), self.pref_env)
        cls = PPO if on_policy else _sac_class(self.config)
        device = self.config.ppo.device if on_policy else self.config.sac.device
        model = cls.load(checkpoint / "agent.zip", env=agent_env, device=device)
        if not on_policy:
            model.load_replay_buffer(checkpoint / "replay.pkl")
        return model

    def _restore_loop(self, checkpoint: Path) -> None:
        state = json.loads((checkpoint / "state.json").read_text())
        self.metrics.truncate(state["num_timesteps"])  # the steps after the checkpoint are run again
        self.pref_env.episode_returns.extend(state["episode_returns"])
        self.pref_env.episode_successes.extend(state["episode_successes"])
        if self.learner is None or self.loop is None:
            return
        self.learner.load_state_dict(torch.load(checkpoint / "learner.pt", weights_only=False))
        caught_up = self.loop.resume(state["loop"], state["trained_labels"])
        if caught_up:
            self.metrics.write(state["num_timesteps"], caught_up)
            self.hooks.after_round(self.learner)


def _sac_class(config: TrainConfig) -> type[SAC]:
    """SAC, or with learner=regret and regret.mode=greedy the SAC whose actor ascends Â directly."""
    greedy = config.method == "pebble" and config.learner == "regret" and config.regret.mode == "greedy"
    return GreedyAdvantageSAC if greedy else SAC


def run_dir_for(config: TrainConfig) -> Path:
    return Path(config.run_dir) if config.run_dir else default_run_dir(config)


def resume_config(run_dir: Path, overrides: dict | None = None) -> TrainConfig:
    path = Path(run_dir) / "config.yaml"
    if not path.exists():
        raise ConfigError(f"{run_dir} is not a pbrl run directory (no config.yaml)")
    data = load_yaml(path)
    data.update(overrides or {})
    return from_dict(TrainConfig, data)
