"""SAC's replay buffer, taught two PEBBLE tricks.

* **Relabeling** — after every reward update, every stored reward is recomputed with the
  new learned reward, in large chunks on the learner's device
  (``rewards[:size] = r̂(obs, act, next_obs)``), so SAC never mixes old and new rewards.
* **Intrinsic reward** — during unsupervised pre-training, sampled batches carry the
  state-entropy reward of their next states instead of the stored reward.
"""

from __future__ import annotations

import numpy as np
import torch
from stable_baselines3.common.buffers import ReplayBuffer
from stable_baselines3.common.type_aliases import ReplayBufferSamples

from agents.state_entropy import StateEntropyReward
from pbrl.learners.base import RewardLearner


class PreferenceReplayBuffer(ReplayBuffer):
    """A :class:`ReplayBuffer` that can be relabeled and can serve intrinsic rewards."""

    intrinsic: StateEntropyReward | None = None

    def filled(self) -> int:
        return self.buffer_size if self.full else self.pos

    def relabel(self, learner: RewardLearner, chunk: int = 100_000) -> None:
        """Overwrite every stored reward with the learner's current reward."""
        device = learner.device
        rows = self.filled()
        for start in range(0, rows, chunk):
            stop = min(start + chunk, rows)
            as_t = lambda a: torch.as_tensor(a[start:stop], device=device).reshape(-1, a.shape[-1])  # noqa: E731
            rewards = learner.reward_tensor(as_t(self.observations), as_t(self.actions), as_t(self.next_observations))
            self.rewards[start:stop] = rewards.reshape(stop - start, self.n_envs).cpu().numpy()

    def _get_samples(self, batch_inds: np.ndarray, env=None) -> ReplayBufferSamples:
        samples = super()._get_samples(batch_inds, env)
        if self.intrinsic is None:
            return samples
        rows = self.filled()
        reference = torch.as_tensor(self.observations[:rows].reshape(rows * self.n_envs, -1), device=self.device)
        rewards = self.intrinsic(samples.next_observations.float(), reference.float()).reshape(-1, 1)
        return samples._replace(rewards=rewards.to(samples.rewards.dtype))
