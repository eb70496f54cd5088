"""``pbrl collect``: make an offline preference dataset for any supported env.

1. **Expert.** ``expert=sac`` trains stable-baselines3 SAC on the true reward for
   ``expert_steps`` (saved as ``<out>.expert/agent.zip``); ``expert=<path to agent.zip>``
   loads one (e.g. a ``method=sac`` run's ``checkpoint/agent.zip``); ``expert=scripted``
   uses MetaWorld's scripted policy (:mod:`pbrl.agents.scripted`; seconds instead of hours).
2. **Behaviour policies of mixed quality.** SAC: the actor at ``checkpoints + 1`` evenly
   spaced points of its training (the untrained one first), each with every Gaussian
   action-noise level in ``noise``; a loaded SAC: the expert with each noise level. Scripted:
   the expert blended with a fixed untrained policy at each weight in ``weights`` (the
   checkpoints' stand-in), with each noise level.
3. **Rollouts** of ``episodes_per_policy`` episodes each (simulator states kept).
4. **Segments** of ``segment_length`` steps, drawn uniformly; ``pairs`` random pairs of them.
5. **Labels** from the configured teacher: ``teacher.type=synthetic`` (B-Pref partial
   return with its preset knobs) or ``teacher.type=regret`` (the expert's advantage: SAC's
   critic, or the max-ent advantage around the scripted expert,
   :func:`pbrl.agents.scripted.maxent_advantage`; ``teacher.expert`` overrides it with another SAC agent).

The result is one HDF5 file (:mod:`pbrl.datasets.offline`) with the whole configuration,
the teacher's included, in its metadata.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from pbrl import envs
from pbrl.agents.config import SACConfig
from pbrl.experiments.config import to_dict
from pbrl.datasets import OfflinePreferenceData, cut_segments, draw_pairs, label_dataset, stack_episodes
from pbrl.rollout import ActionScale, Rollout
from pbrl.teachers.base import Teacher
from pbrl.teachers.regret import RegretTeacher, RegretTeacherConfig
from pbrl.teachers.synthetic import SyntheticTeacher
from pbrl.transitions import TransitionLog

Behaviour = Callable[[np.ndarray, np.random.Generator], np.ndarray]  # obs [1, d] -> normalised action [1, a]
Advantage = Callable[[np.ndarray, np.ndarray], np.ndarray]


@dataclass(frozen=True)
class CollectTeacherConfig(RegretTeacherConfig):
    """The labeler of ``pbrl collect``: B-Pref's synthetic teacher, or the regret teacher (an expert's
    optimal advantage), each with B-Pref's preset and knobs."""

    type: str = "synthetic"
    """'synthetic' (B-Pref's partial-return teacher) or 'regret' (an expert's optimal advantage)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.type not in ("synthetic", "regret"):
            raise ValueError(f"teacher.type={self.type!r} cannot label offline data; choose 'synthetic' or 'regret'")


@dataclass(frozen=True)
class CollectConfig:
    """What ``pbrl collect`` makes (defaults: a CPL-paper-style dataset, 64-step segments)."""

    env: str = "metaworld:button-press-v3"
    """Environment id (see `pbrl envs`)."""
    out: str | None = None
    """Output HDF5 path (default: datasets/<env>-<expert>-<teacher>-s<seed>.h5)."""
    seed: int = 0
    """Seed of everything (expert training, rollouts, segments, pairs, labels)."""
    expert: str = "sac"
    """'sac' (train one on the true reward), a path to a SAC agent.zip (load it), or 'scripted' (MetaWorld)."""
    expert_steps: int = 100_000
    """expert=sac: SAC training steps on the true reward."""
    checkpoints: int = 4
    """expert=sac: behaviour policies from this many evenly spaced training checkpoints (+ the untrained actor)."""
    weights: tuple[float, ...] = (0.0, 0.25, 0.5, 0.75, 1.0)
    """expert=scripted: blend weights of the expert against a fixed untrained policy (1 = the expert)."""
    noise: tuple[float, ...] = (0.3,)
    """Gaussian action-noise std levels (normalised actions); every policy is rolled out with each."""
    episodes_per_policy: int = 10
    """Episodes per behaviour policy and noise level."""
    max_episode_steps: int | None = None
    """Override the env's episode length."""
    segment_length: int = 64
    """Steps per segment (CPL's MetaWorld datasets: 64)."""
    segments: int = 2_500
    """Segments drawn (uniformly over all whole-segment start positions)."""
    pairs: int = 5_000
    """Labeled pairs (uniformly drawn pairs of distinct segments)."""
    maxent_std: float = 0.3
    """expert=scripted, teacher.type=regret: σ of the max-ent expert N(π_E(s), σ²) whose advantage −‖a − π_E(s)‖²/(2σ²) labels pairs."""
    torch_threads: int = 1
    """Torch CPU threads (small MLPs run fastest on one; more threads on a shared CPU can be 50× slower)."""
    teacher: CollectTeacherConfig = field(default_factory=CollectTeacherConfig)
    """Who labels the pairs (teacher.type, teacher.preset and B-Pref's knobs; teacher.expert for regret)."""
    sac: SACConfig = field(default_factory=lambda: SACConfig(unsupervised_pretraining=False))
    """SAC settings of the expert trained when expert=sac (no state-entropy pre-training)."""

    def __post_init__(self) -> None:
        for name in ("episodes_per_policy", "segment_length", "segments", "pairs", "expert_steps", "checkpoints"):
            if getattr(self, name) < 1:
                raise ValueError(f"collect.{name} must be ≥ 1, got {getattr(self, name)}")
        if not self.noise or any(n < 0 for n in self.noise):
            raise ValueError(f"collect.noise needs at least one level, all ≥ 0; got {self.noise}")

    def output_path(self) -> Path:
        if self.out:
            return Path(self.out)
        expert = "sac" if self.expert not in ("sac", "scripted") else self.expert
        return Path("datasets") / f"{self.env.replace(':', '-')}-{expert}-{self.teacher.type}-s{self.seed}.h5"


def rollout(env: gym.Env, behaviour: Behaviour, episodes: int, seed: int, rng: np.random.Generator) -> list[dict]:
    """``episodes`` episodes of ``behaviour`` (normalised actions) on ``env`` (reset with seeds
    ``seed, seed + 1, …``), each a dict of step arrays (:meth:`TransitionLog.episodes`)."""
    log = TransitionLog(episodes * env.episode_limit, env_id=env.env_id)
    Rollout(env, log).run(lambda obs: behaviour(obs[None], rng)[0], episodes=episodes, seed=seed)
    return log.episodes()


def _sac_behaviours(config: CollectConfig, out: Path, space: gym.spaces.Box) -> tuple[list[tuple[dict, Behaviour]], Any]:
    """(description, behaviour) per SAC checkpoint (or the loaded expert), and the final SAC model."""
    from stable_baselines3 import SAC
    from stable_baselines3.common.vec_env import DummyVecEnv

    from pbrl.agents.sac import make_sac

    to_unit = ActionScale(space).to_unit
    actors: list[tuple[dict, Any]] = []
    if config.expert == "sac":
        venv = DummyVecEnv([lambda: envs.make(config.env, seed=config.seed, max_episode_steps=config.max_episode_steps)])
        sac = replace(config.sac, buffer_size=min(config.sac.buffer_size, config.expert_steps))
        model = make_sac(venv, sac, config.seed)
        for k in range(config.checkpoints + 1):
            if k:
                model.learn(config.expert_steps // config.checkpoints, reset_num_timesteps=False)
            actors.append(({"name": f"sac@{model.num_timesteps}", "sac_steps": int(model.num_timesteps)}, copy.deepcopy(model.policy)))
        out.with_suffix(".expert").mkdir(parents=True, exist_ok=True)
        model.save(out.with_suffix(".expert") / "agent.zip")
    else:
        model = SAC.load(config.expert, device="cpu")
        actors.append(({"name": "sac-expert", "path": config.expert}, model.policy))

    def behaviour(policy) -> Behaviour:
        return lambda obs, rng: to_unit(policy.predict(obs, deterministic=True)[0])

    return [(desc, behaviour(policy)) for desc, policy in actors], model


def _scripted_behaviours(config: CollectConfig, obs_dim: int, act_dim: int) -> list[tuple[dict, Behaviour]]:
    from pbrl.agents.scripted import BlendedPolicy, scripted_policy

    expert = scripted_policy(config.env)
    return [
        ({"name": f"scripted@{w:g}", "weight": w}, BlendedPolicy(expert, obs_dim, act_dim, w, 0.0, config.seed))
        for w in config.weights
    ]


def _with_noise(behaviour: Behaviour, noise: float) -> Behaviour:
    if noise == 0:
        return behaviour

    def noisy(obs: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        action = behaviour(obs, rng)
        return np.clip(action + noise * rng.standard_normal(action.shape), -1.0, 1.0).astype(np.float32)

    return noisy


def build_teacher(config: CollectConfig, advantage: Callable[[], Advantage]) -> Teacher:
    """The configured teacher; a regret teacher gets the expert's advantage (built on demand)."""
    teacher = config.teacher
    if teacher.type == "synthetic":
        return SyntheticTeacher(teacher, name=f"synthetic:{teacher.preset}")
    if teacher.expert:
        from pbrl.agents.expert import expert_advantage

        fn = expert_advantage(teacher.expert, teacher.expert_samples, seed=config.seed)
    else:
        fn = advantage()
    return RegretTeacher(fn, teacher, name=f"regret:{teacher.preset}")


def collect(config: CollectConfig, log: Callable[[str], None] = print) -> Path:
    """Make the dataset described by ``config``; returns the written path."""
    started, out = time.perf_counter(), config.output_path()
    torch.set_num_threads(config.torch_threads)
    rng = np.random.default_rng(config.seed)
    probe = envs.make(config.env, seed=config.seed, max_episode_steps=config.max_episode_steps)
    obs_dim, act_dim = probe.observation_space.shape[0], probe.action_space.shape[0]
    if config.expert == "scripted":
        behaviours, model = _scripted_behaviours(config, obs_dim, act_dim), None
    else:
        behaviours, model = _sac_behaviours(config, out, probe.action_space)
    log(f"pbrl collect: {len(behaviours)} policies × {len(config.noise)} noise levels × {config.episodes_per_policy} episodes")

    episodes, owners, policies = [], [], []
    for desc, behaviour in behaviours:
        for noise in config.noise:
            seed = config.seed * 100_000 + 1_000 * len(policies)
            batch = rollout(probe, _with_noise(behaviour, noise), config.episodes_per_policy, seed, rng)
            policies.append({**desc, "noise": noise, "episodes": len(batch),
                             "mean_return": float(np.mean([e["rewards"].sum() for e in batch])),
                             "success_rate": float(np.mean([e["successes"].max() for e in batch]))})
            episodes += batch
            owners += [len(policies) - 1] * len(batch)
            log(f"  {policies[-1]['name']} noise {noise}: return {policies[-1]['mean_return']:.1f}, "
                f"success {policies[-1]['success_rate']:.2f}")

    data = stack_episodes(episodes, owners)
    seg_episode, seg_start = cut_segments(data, config.segments, config.segment_length, rng)
    left, right = draw_pairs(config.segments, config.pairs, rng)
    metadata = {"collection": {k: v for k, v in to_dict(config).items() if k != "teacher"},
                "teacher": to_dict(config.teacher), "policies": policies}
    dataset = OfflinePreferenceData(config.env, data, seg_episode, seg_start, config.segment_length,
                                    left, right, np.full(len(left), np.nan, np.float32), metadata)

    def advantage() -> Advantage:
        if model is not None:
            from pbrl.agents.expert import sac_advantage

            return sac_advantage(model, config.teacher.expert_samples, seed=config.seed)
        from pbrl.agents.scripted import maxent_advantage, scripted_policy

        return maxent_advantage(scripted_policy(config.env), std=config.maxent_std)

    teacher = build_teacher(config, advantage)
    dataset = label_dataset(dataset, teacher, rng)
    dataset.metadata["teacher"]["name"] = teacher.name
    dataset.metadata["seconds"] = round(time.perf_counter() - started, 1)
    dataset.save(out)
    labels = dataset.labels
    log(f"pbrl collect: {data.steps} steps, {config.segments} segments, {len(labels)} pairs "
        f"({np.isnan(labels).sum()} skipped, {(labels == 0.5).sum()} equal) → {out} in {time.perf_counter() - started:.0f} s")
    return out
