"""A cheap competent expert for MetaWorld: the scripted policies that ship with ``metaworld``,
a ladder of worse policies made from it, and an advantage for it (for regret labels).

* :func:`scripted_policy` — ``metaworld.policies.Sawyer<Task>V3Policy`` as a batched callable.
* :class:`BlendedPolicy` — ``a = clip(w · π_E(s) + (1 − w) · π₀(s) + ε, −1, 1)``, ``ε ∼ N(0, σ²)``,
  with ``π₀`` a fixed randomly initialised MLP (an untrained policy, as at the start of RL
  training). ``w`` from 0 to 1 stands in for checkpoints along training: unlike zero-mean
  noise on the expert, the untrained part is a *systematic* error, so cloning the mixture
  does not average back to the expert.
* :func:`maxent_advantage` — the advantage of a maximum-entropy expert centred on the
  scripted policy (CPL's ``A* = α log π*``): the expert's advantage the regret teacher
  needs, with no critic to fit. (Fitted Q evaluation of the scripted expert was tried
  first: a few thousand CPU steps left it far from converged, and its labels preferred
  the *worse* policies on drawer-open; this closed form has no such failure.)
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from pbrl.nets import mlp

Policy = Callable[[np.ndarray], np.ndarray]  # obs [N, d] -> actions [N, a] in [-1, 1]


def scripted_policy(env_id: str) -> Policy:
    """MetaWorld's scripted policy for ``metaworld:<task>-v3`` as ``obs [N, d] → actions [N, 4]``."""
    import metaworld.policies

    task = env_id.partition(":")[2]
    name = "Sawyer" + "".join(part.capitalize() for part in task.removesuffix("-v3").split("-")) + "V3Policy"
    name = name.replace("PegInsertSide", "PegInsertionSide")
    if not env_id.startswith("metaworld:") or not hasattr(metaworld.policies, name):
        raise ValueError(f"no scripted policy for {env_id!r}: expert=scripted works for metaworld:<task>-v3 ids only")
    expert = getattr(metaworld.policies, name)()

    def act(obs: np.ndarray) -> np.ndarray:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "Constant(s) may be too high": we clip below
            actions = np.stack([expert.get_action(o.astype(np.float64)) for o in np.atleast_2d(obs)])
        return np.clip(actions, -1.0, 1.0).astype(np.float32)

    return act


class BlendedPolicy:
    """``clip(w · π_E(s) + (1 − w) · π₀(s) + ε, −1, 1)`` (see the module docstring)."""

    def __init__(self, expert: Policy, obs_dim: int, act_dim: int, weight: float, noise: float, seed: int) -> None:
        if not 0.0 <= weight <= 1.0 or noise < 0:
            raise ValueError(f"blend weight must be in [0, 1] and noise ≥ 0, got {weight}, {noise}")
        self.expert, self.weight, self.noise = expert, weight, noise
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)  # the same untrained policy for every weight of one dataset
            self.untrained = mlp(obs_dim, act_dim, (64, 64))
            for layer in self.untrained:
                if isinstance(layer, nn.Linear):  # large enough weights that π₀ commits to directions
                    nn.init.normal_(layer.weight, 0.0, 2.0 / np.sqrt(layer.in_features))

    @torch.no_grad()
    def __call__(self, obs: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        obs = np.atleast_2d(obs).astype(np.float32)
        action = self.weight * self.expert(obs) if self.weight > 0 else 0.0
        if self.weight < 1:
            action = action + (1 - self.weight) * torch.tanh(self.untrained(torch.as_tensor(obs))).numpy()
        action = action + self.noise * rng.standard_normal((len(obs), self.untrained[-1].out_features))
        return np.clip(action, -1.0, 1.0).astype(np.float32)


def maxent_advantage(expert: Policy, temperature: float = 1.0, std: float = 0.3) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """The advantage of a maximum-entropy expert around the scripted policy, as a numpy callable
    ``(obs [N, d], actions [N, a]) → [N]`` for :class:`~pbrl.teachers.regret.RegretTeacher`.

    CPL's premise: a maximum-entropy optimal policy satisfies ``A*(s, a) = α log π*(a|s)``.
    Taking ``π* = N(π_E(s), σ² I)`` around the scripted expert gives, up to a constant that
    is the same in every state (and so cancels in every comparison of segments),

        A(s, a) = − α ‖a − π_E(s)‖² / (2σ²),

    so a segment's regret is how far its actions stray from the expert's. Exact for the
    premise, cheap (one scripted call per step), and no critic to fit.
    """
    if temperature <= 0 or std <= 0:
        raise ValueError(f"temperature and std must be > 0, got {temperature}, {std}")

    known: dict[bytes, np.ndarray] = {}  # π_E by state: the pairs of a dataset share their segments' steps

    def expert_actions(obs: np.ndarray) -> np.ndarray:
        obs = np.asarray(obs, np.float32)
        keys = [o.tobytes() for o in obs]
        missing = {k: i for i, k in enumerate(keys) if k not in known}  # first row of each new state
        if missing:
            known.update(zip(missing, expert(obs[list(missing.values())])))
        return np.stack([known[k] for k in keys])

    def advantage(obs: np.ndarray, actions: np.ndarray) -> np.ndarray:
        distance = np.square(np.asarray(actions, np.float32) - expert_actions(obs)).sum(axis=-1)
        return -temperature * distance / (2 * std**2)

    return advantage
