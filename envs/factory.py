"""``make``: one env id in, one Gymnasium env that obeys pbrl's contract out.

Per suite:

- ``gym``: ``gymnasium.make`` with the env's default time limit (1000 for locomotion,
  50 for Reacher, ...).
- ``metaworld``: MetaWorld's MT1 for the task, built from its public pieces exactly as
  ``gym.make("Meta-World/MT1", env_name=..., seed=...)`` builds it (50 goals sampled with
  the seed; one picked at random on every reset, as MetaWorld does by default), minus the
  wrappers pbrl does not want (episode statistics, checkpointing) and with the time limit
  under our control: MetaWorld's own step counter raises once it reaches
  ``max_path_length`` (500), so it is set to the same limit as the ``TimeLimit``.
- ``dmc``: see :mod:`pbrl.envs.dmc`; 1000 steps.

Then, for all: observations as a float32 vector, and :class:`PreferenceInfoWrapper` last.
Gymnasium's passive env checker is off (MetaWorld trips its observation-bounds warning;
the contract is tested instead).
"""

from __future__ import annotations

import gymnasium as gym
from gymnasium.wrappers import TimeLimit

from pbrl.envs.dmc import DMC_EPISODE_STEPS, make_dmc
from pbrl.envs.registry import parse_env_id
from pbrl.envs.wrappers import FlatFloat32Observation, MetaWorldSeeding, PreferenceInfoWrapper


def make(env_id: str, seed: int | None = None, *, max_episode_steps: int | None = None) -> gym.Env:
    """Make the env named ``env_id`` (see :func:`pbrl.envs.available_env_ids`).

    ``seed`` makes the env reproducible: it seeds the spaces and the first ``reset`` that
    passes no seed. For MetaWorld it also seeds the sampling of the task's 50 goals; every
    reset then draws one of them (``reset(seed=s)`` fixes that draw too).
    ``max_episode_steps`` overrides the suite's episode limit; hitting the limit comes out
    as ``truncated=True``.
    """
    spec = parse_env_id(env_id)
    if max_episode_steps is not None and max_episode_steps < 1:
        raise ValueError(f"max_episode_steps must be a positive int, got {max_episode_steps}")
    if spec.suite == "gym":
        limit = max_episode_steps or gym.spec(spec.name).max_episode_steps or 1000
        env = gym.make(spec.name, max_episode_steps=limit, disable_env_checker=True)
    elif spec.suite == "metaworld":
        env, limit = _make_metaworld(spec.name, seed, max_episode_steps)
    else:
        limit = max_episode_steps or DMC_EPISODE_STEPS
        env = TimeLimit(make_dmc(spec.name, seed), limit)
    return PreferenceInfoWrapper(
        FlatFloat32Observation(env), env_id=str(spec), episode_limit=limit, seed=seed
    )


def _make_metaworld(
    name: str, seed: int | None, max_episode_steps: int | None
) -> tuple[gym.Env, int]:
    import metaworld
    from metaworld.wrappers import RandomTaskSelectWrapper

    benchmark = metaworld.MT1(name, seed=seed)
    base = benchmark.train_classes[name]()
    limit = max_episode_steps or base.max_path_length
    base.max_path_length = limit
    if seed is not None:
        base.seed(seed)
    env = MetaWorldSeeding(RandomTaskSelectWrapper(base, benchmark.train_tasks))
    return TimeLimit(env, limit), limit
