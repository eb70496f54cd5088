"""PEBBLE's unsupervised pre-training reward: a particle estimate of state entropy.

Before the first query, PEBBLE (Lee et al., 2021) explores by maximising the entropy of
the state distribution with the intrinsic reward

    r_int(s) = ‖s − s^k‖₂,

the distance from ``s`` to its k-th nearest neighbour among the states collected so far
(k = 5), divided by a running estimate of its standard deviation. Reward computed on the
sampled batch at update time for the batch's states ``s_t``, as in B-Pref's
``update_state_ent`` (``agent/sac.py``: ``compute_state_entropy(obs, full_obs, k=K)``).
``on="next_obs"`` scores ``s_{t+1}`` instead (what pbrl did before; kept as an option).
"""

from __future__ import annotations

from typing import Literal

import torch

from pbrl.knn import knn_distance

STATE_ENTROPY_ON = ("obs", "next_obs")


class RunningStd:
    """Running mean/variance (parallel Welford), for normalising the intrinsic reward."""

    def __init__(self, epsilon: float = 1e-4) -> None:
        self.mean, self.var, self.count = 0.0, 1.0, epsilon

    def update(self, x: torch.Tensor) -> None:
        batch_mean, batch_var, n = x.mean().item(), x.var(unbiased=False).item(), x.numel()
        delta, total = batch_mean - self.mean, self.count + n
        self.mean += delta * n / total
        self.var = (self.var * self.count + batch_var * n + delta**2 * self.count * n / total) / total
        self.count = total

    @property
    def std(self) -> float:
        return max(self.var, 1e-8) ** 0.5


class BPrefRunningStd(RunningStd):
    """B-Pref's ``TorchRunningMeanStd`` exactly as written (``utils.py`` L211–247; agent.state_entropy_std='bpref-code').

    Two departures from :class:`~pbrl.agents.state_entropy.RunningStd`: the batch variance is unbiased
    (``torch.var``, L220) and the mean update is ``mean + delta + batch_count / tot_count`` (L240; the
    intended ``delta · batch_count / tot_count``). The mean thus stays near the latest batch's, ``delta``
    is only the step-to-step change, and the variance is close to the average *within-step* variance of the
    envs' distances rather than the variance of all of them. A single env (torch.var of one value: NaN in
    B-Pref) counts as variance 0.
    """

    def update(self, x: torch.Tensor) -> None:
        n = x.numel()
        batch_mean, batch_var = x.mean().item(), (x.var().item() if n > 1 else 0.0)
        delta, total = batch_mean - self.mean, self.count + n
        self.mean = self.mean + delta + n / total
        self.var = (self.var * self.count + batch_var * n + delta**2 * self.count * n / total) / total
        self.count = total


STATE_ENTROPY_STD = ("running", "bpref-code")


class StateEntropyReward:
    """Normalised k-NN state-entropy reward over a growing set of states."""

    def __init__(self, k: int = 5, on: Literal["obs", "next_obs"] = "obs", std: str = "running") -> None:
        if on not in STATE_ENTROPY_ON:
            raise ValueError(f"the state-entropy reward is computed on one of {STATE_ENTROPY_ON}, got {on!r}")
        if std not in STATE_ENTROPY_STD:
            raise ValueError(f"the state-entropy reward is normalised by one of {STATE_ENTROPY_STD}, got {std!r}")
        self.k = k
        self.on = on
        """Which state of a transition is scored: ``"obs"`` = s_t (B-Pref), ``"next_obs"`` = s_{t+1}."""
        self.stats = RunningStd() if std == "running" else BPrefRunningStd()
        """Divides the distances: pbrl's running std ('running') or B-Pref's as written ('bpref-code')."""

    def __call__(self, states: torch.Tensor, all_obs: torch.Tensor) -> torch.Tensor:
        """Normalised reward ``r_int(s)`` of ``states`` [B, d] against every stored state ``all_obs`` [N, d]."""
        entropy = knn_distance(states, all_obs, self.k)
        self.stats.update(entropy)
        return entropy / self.stats.std
