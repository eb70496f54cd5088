"""SAC's replay buffer, taught two PEBBLE tricks.

* **Relabeling** — after every reward update, every stored reward is recomputed with the
  new learned reward, in large chunks on the learner's device
  (``rewards[:size] = r̂(obs, act, next_obs)``), so SAC never mixes old and new rewards.
* **Intrinsic reward** — during unsupervised pre-training, sampled batches carry the
  state-entropy reward of their next states instead of the stored reward.

And QPA's **hybrid experience replay** (Hu et al., ICLR 2024): with ``recent_fraction = ω``
each batch of ``B`` takes ``round(ω·B)`` transitions uniformly from the ``recent_window``
most recent rows and the other ``B − round(ω·B)`` uniformly from the whole buffer (QPA:
ω = 0.5, the last N = 10 episodes), so the critic and actor concentrate on the policy's
own recent distribution, where the reward model was just queried. The recent part comes
last in the batch. Sampling uses NumPy's global generator, as SB3's own buffers do
(seeded by ``set_random_seed``). QPA's code switches back to uniform replay once the
feedback budget is spent; here the share stays fixed for the whole run.
"""

from __future__ import annotations

import numpy as np
import torch
from stable_baselines3.common.buffers import ReplayBuffer
from stable_baselines3.common.type_aliases import ReplayBufferSamples

from pbrl.agents.state_entropy import StateEntropyReward
from pbrl.learners.base import RewardLearner


class PreferenceReplayBuffer(ReplayBuffer):
    """A :class:`ReplayBuffer` that can be relabeled and can serve intrinsic rewards."""

    intrinsic: StateEntropyReward | None = None
    recent_fraction: float = 0.0
    """Share ω of every sampled batch drawn from the most recent rows (0 = plain uniform replay)."""
    recent_window: int = 10_000
    """Rows (per env) that count as recent."""

    def filled(self) -> int:
        return self.buffer_size if self.full else self.pos

    def configure_hybrid_replay(self, fraction: float | None, window: int) -> None:
        """Switch QPA's hybrid experience replay on (``fraction > 0``) or off (``0`` / ``None``)."""
        fraction = 0.0 if fraction is None else float(fraction)
        if not 0.0 <= fraction <= 1.0:
            raise ValueError(f"hybrid replay fraction must be in [0, 1], got {fraction}")
        if window < 1:
            raise ValueError(f"hybrid replay window must be ≥ 1 transition, got {window}")
        if fraction > 0 and self.optimize_memory_usage:
            raise ValueError("hybrid experience replay does not support optimize_memory_usage=True")
        self.recent_fraction, self.recent_window = fraction, int(window)

    def sample(self, batch_size: int, env=None) -> ReplayBufferSamples:
        recent = int(round(batch_size * self.recent_fraction))
        if recent == 0:
            return super().sample(batch_size, env=env)
        rows = self.filled()
        uniform = np.random.randint(0, rows, size=batch_size - recent)
        age = np.random.randint(0, min(self.recent_window, rows), size=recent)  # 0 = the newest row
        latest = (self.pos - 1 - age) % self.buffer_size
        return self._get_samples(np.concatenate([uniform, latest]), env=env)

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
