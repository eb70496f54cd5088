"""What the reward-free learners (CPL, IPL, behaviour cloning) share: an MLP Gaussian policy,
minibatches of segment pairs, and the :class:`PolicyLearner` interface the loops act through.

The policy is ``π(a|s) = N(μ(s), σ²I)`` with ``μ(s) = tanh(MLP(s))`` in the normalised
action box [−1, 1] (the actions pbrl logs). Two variants, as in the reference code:

* ``learn_std=False`` (CPL's state-based actor): the log-likelihood is taken up to its
  constant and scale, ``log π(a|s) ≐ −‖μ(s) − a‖²`` (a unit-variance Gaussian's
  ``−½‖μ − a‖²`` without the ½, exactly what jhejna/cpl optimises);
* ``learn_std=True`` (IPL's actor): a state-independent ``log σ`` clamped to [−5, 2] and
  the exact Gaussian ``log π(a|s) = Σ_j log N(a_j; μ_j(s), σ_j²)``.
"""

from __future__ import annotations

from abc import abstractmethod
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import torch
from torch import nn

from pbrl.learners.base import PreferenceLearner
from pbrl.learners.bradley_terry import resolve_device
from pbrl.nets import mlp
from pbrl.segments import PreferenceDataset

LOG_STD_BOUNDS = (-5.0, 2.0)


class GaussianPolicy(nn.Module):
    """``N(tanh(MLP(s)), σ²)`` over normalised actions; see the module docstring for ``learn_std``."""

    def __init__(
        self, obs_dim: int, act_dim: int, hidden: tuple[int, ...], dropout: float = 0.0, learn_std: bool = False,
        init: str = "torch",
    ) -> None:
        super().__init__()
        self.net = mlp(obs_dim, act_dim, hidden, dropout=dropout, init=init)
        self.log_std = nn.Parameter(torch.zeros(act_dim)) if learn_std else None

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        """The mean action ``μ(s)`` (any leading shape)."""
        return torch.tanh(self.net(obs))

    def log_prob(self, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """``log π(a|s)`` summed over action dimensions; shape ``obs.shape[:-1]``."""
        mean = self(obs)
        if self.log_std is None:
            return -torch.square(mean - actions).sum(dim=-1)
        std = self.log_std.clamp(*LOG_STD_BOUNDS).exp()
        return torch.distributions.Normal(mean, std).log_prob(actions).sum(dim=-1)


@dataclass(frozen=True)
class PairBatch:
    """A minibatch of labeled pairs as tensors: ``obs``/``actions``/``next_obs`` are ``[2, B, T, ·]``
    (index 0 = left, 1 = right), ``terminals`` ``[2, B, T]`` (1.0 where the episode truly
    terminated after the step, see :class:`~pbrl.segments.Segments`) and ``labels`` is
    ``[B]`` = P[left ≻ right]."""

    obs: torch.Tensor
    actions: torch.Tensor
    next_obs: torch.Tensor
    terminals: torch.Tensor
    labels: torch.Tensor


def sample_pairs(
    data: PreferenceDataset, batch_size: int, window: int | None, rng: np.random.Generator, device: torch.device,
    draw: bool = True,
) -> PairBatch:
    """``batch_size`` pairs drawn uniformly (with replacement; ``draw=False``: all of ``data``, in order);
    with ``window`` set, each segment is cut to a random ``window``-step slice
    (jhejna/inverse-preference-learning's subsampling; the label stays the whole segments' label)."""
    index = rng.integers(0, len(data), size=batch_size) if draw else np.arange(len(data))
    batch_size = len(index)
    length = data.left.length
    steps = np.arange(length)[None, :]
    if window is not None and window < length:
        steps = rng.integers(0, length - window + 1, size=(batch_size, 1)) + np.arange(window)[None, :]
    rows = index[:, None]

    def both(name: str) -> torch.Tensor:
        pair = np.stack([getattr(data.left, name)[rows, steps], getattr(data.right, name)[rows, steps]])
        return torch.as_tensor(pair, dtype=torch.float32, device=device)

    labels = torch.as_tensor(data.labels[index], dtype=torch.float32, device=device)
    return PairBatch(both("obs"), both("actions"), both("next_obs"), both("terminal_mask"), labels)


class PolicyLearnerConfig(Protocol):
    """What :class:`PolicyLearner` reads from a learner's config (``CPLConfig``, ``IPLConfig``)."""

    device: str
    steps_per_update: int


class PolicyLearner(PreferenceLearner):
    """A reward-free preference learner: it owns a policy and acts with it.

    Subclasses implement :meth:`build_networks` (called once, with the global torch RNG
    seeded by ``seed`` inside a fork, so the initial weights depend on the seed alone) and
    :meth:`train_step`; :meth:`update` runs ``steps_per_update`` of them on minibatches.
    Randomness is the learner's own: minibatches come from ``self.rng`` and dropout draws
    from a torch RNG state kept with the learner (the global one is left as it was), so the
    same seed gives the same numbers and a resumed learner continues exactly.
    """

    policy: GaussianPolicy

    def __init__(self, obs_dim: int, act_dim: int, config: PolicyLearnerConfig, seed: int) -> None:
        self.config = config
        self.device = resolve_device(config.device)  # 'auto': cuda if available, else cpu
        self.steps_per_update = config.steps_per_update
        self.updates = 0  # gradient steps taken so far
        self.seed(seed)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.build_networks(obs_dim, act_dim)

    @abstractmethod
    def build_networks(self, obs_dim: int, act_dim: int) -> None:
        """Create ``self.policy`` (and any other network) on ``self.device``."""

    def seed(self, seed: int) -> None:
        """Seed the minibatch generator and the torch RNG state used inside :meth:`update`."""
        self.rng = np.random.default_rng(seed)
        self.torch_rng = torch.Generator().manual_seed(seed).get_state()

    def rng_state(self) -> dict[str, Any]:
        return {"rng": self.rng.bit_generator.state, "torch_rng": self.torch_rng}

    def load_rng_state(self, state: dict[str, Any]) -> None:
        self.rng.bit_generator.state = state["rng"]
        self.torch_rng = state["torch_rng"]

    @abstractmethod
    def train_step(self, data: PreferenceDataset) -> dict[str, float]:
        """One gradient step on a minibatch drawn from ``data``; returns scalars."""

    def update(self, data: PreferenceDataset) -> dict[str, float]:
        """``steps_per_update`` gradient steps; returns the scalars averaged over them."""
        if len(data) == 0:
            raise ValueError("the preference dataset is empty: collect labels before updating the learner")
        self.policy.train()
        totals: dict[str, float] = {}
        with torch.random.fork_rng(devices=[]):
            torch.set_rng_state(self.torch_rng)
            for _ in range(self.steps_per_update):
                for key, value in self.train_step(data).items():
                    totals[key] = totals.get(key, 0.0) + value
                self.updates += 1
            self.torch_rng = torch.get_rng_state()
        self.policy.eval()
        return {key: value / self.steps_per_update for key, value in totals.items()}

    @torch.no_grad()
    def act(self, obs: np.ndarray) -> np.ndarray:
        """The policy's mean action(s) ``μ(s)`` in [−1, 1] (no dropout), for ``[d]`` or ``[N, d]`` observations."""
        self.policy.eval()
        mean = self.policy(torch.as_tensor(np.asarray(obs, np.float32), device=self.device))
        return mean.cpu().numpy()
