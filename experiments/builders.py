"""Registries that turn config names into objects: teachers and preference learners.

New teachers (regret, human) and learners (regret/Â, Hindsight PRIOR, REED, IPL, CPL)
add one builder here under their name; the trainer and the CLI pick them up with no
other change. Builders receive the whole :class:`TrainConfig` so each can read its own
config section.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass

from pbrl.experiments.config import ConfigError, TrainConfig
from pbrl.learners.advantage import AdvantageLearner
from pbrl.learners.base import PreferenceLearner
from pbrl.learners.bradley_terry import BTEnsemble
from pbrl.learners.hindsight_prior import HindsightPrior
from pbrl.learners.reed import REED
from pbrl.teachers.base import Teacher
from pbrl.teachers.human import HumanTeacher
from pbrl.teachers.regret import RegretTeacher
from pbrl.teachers.synthetic import SyntheticTeacher


@dataclass(frozen=True)
class EnvSpec:
    """What builders may need to know about the environment."""

    env_id: str
    obs_dim: int
    act_dim: int
    episode_length: int


TeacherBuilder = Callable[[TrainConfig, EnvSpec], Teacher]
LearnerBuilder = Callable[[TrainConfig, EnvSpec], PreferenceLearner]


def _synthetic(config: TrainConfig, env: EnvSpec) -> Teacher:
    return SyntheticTeacher(config.teacher.synthetic(), name=f"synthetic:{config.teacher.preset}")


def _regret(config: TrainConfig, env: EnvSpec) -> Teacher:
    from pbrl.agents.expert import load_expert, sac_advantage

    if not config.teacher.expert:
        raise ConfigError("teacher.type=regret needs teacher.expert=<path to a SAC checkpoint/agent.zip> (train one with method=sac)")
    advantage = sac_advantage(load_expert(config.teacher.expert), config.teacher.expert_samples, seed=config.seed)
    return RegretTeacher(advantage, config.teacher.synthetic(), name=f"regret:{config.teacher.preset}")


def _human(config: TrainConfig, env: EnvSpec) -> Teacher:
    from importlib.util import find_spec

    if not all(find_spec(module) for module in ("fastapi", "uvicorn", "imageio_ffmpeg")):  # the web stack is an extra
        raise ConfigError("teacher.type=human serves a labeling page: pip install -e '.[label]'")
    return HumanTeacher(config.teacher.human, env.env_id, budget=config.feedback.budget)


def _bradley_terry(config: TrainConfig, env: EnvSpec) -> PreferenceLearner:
    return BTEnsemble(env.obs_dim, env.act_dim, config.reward, config.seed)


def _advantage(config: TrainConfig, env: EnvSpec) -> PreferenceLearner:
    if config.regret.mode == "greedy" and config.method == "pref-ppo":
        raise ConfigError(
            "regret.mode=greedy trains a SAC-style actor on Â(s, π(s)) directly, which PPO has no place for: "
            "use method=pebble, or regret.mode=reward to give PPO Â as its reward"
        )
    if config.regret.mode == "reward" and not (config.regret.anchor or config.feedback.absorbing):
        warnings.warn(
            "regret.mode=reward with regret.anchor=false and feedback.absorbing=false: Â's unidentified constant "
            "becomes a per-step reward bonus or penalty, so where the env can terminate the agent learns to prolong "
            "or to end episodes (Knox et al. 2024). Pin it with regret.anchor=true or feedback.absorbing=true.",
            stacklevel=2,
        )
    return AdvantageLearner(env.obs_dim, env.act_dim, config.reward, config.regret, config.seed)


def _hindsight_prior(config: TrainConfig, env: EnvSpec) -> PreferenceLearner:
    return HindsightPrior(env.obs_dim, env.act_dim, config.feedback.segment_length, config.reward, config.hprior, config.seed)


def _reed(config: TrainConfig, env: EnvSpec) -> PreferenceLearner:
    return REED(env.obs_dim, env.act_dim, config.reward, config.reed, config.seed)


TEACHERS: dict[str, TeacherBuilder] = {"synthetic": _synthetic, "regret": _regret, "human": _human}
LEARNERS: dict[str, LearnerBuilder] = {"bt": _bradley_terry, "regret": _advantage, "hprior": _hindsight_prior, "reed": _reed}


def build_teacher(config: TrainConfig, env: EnvSpec) -> Teacher:
    if config.teacher.type not in TEACHERS:
        raise ConfigError(f"teacher.type={config.teacher.type!r} is unknown; choose one of {sorted(TEACHERS)}")
    return TEACHERS[config.teacher.type](config, env)


def build_learner(config: TrainConfig, env: EnvSpec) -> PreferenceLearner | None:
    """The run's preference learner; ``None`` for the true-reward baseline (method ``sac``)."""
    if config.method == "sac":
        return None
    if config.learner not in LEARNERS:
        raise ConfigError(f"learner={config.learner!r} is unknown; choose one of {sorted(LEARNERS)}")
    return LEARNERS[config.learner](config, env)
