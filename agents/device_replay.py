"""The PEBBLE replay buffer kept on the agent's device as preallocated torch tensors.

Same interface and semantics as :class:`~pbrl.agents.replay.PreferenceReplayBuffer`
(relabeling, the state-entropy reward, QPA's hybrid replay, SB3's ``add``/``sample``), but
every transition lives in one preallocated tensor ``storage[row, env, ·]`` on the agent's
device, packed as ``[s | s' | a | r | d | timeout | bonus]`` (``bonus``: RUNE's column, zero without it); ``observations``, ``actions``,
``rewards``… are views into it. So

* ``add`` is one host→device copy per env step (the packed row);
* ``sample`` draws indices with torch's generator on the device and gathers the batch
  with one indexing of ``storage`` — no host round-trip, nothing waits for the device;
* ``relabel`` rewrites ``rewards[:rows]`` in place on the device in large chunks, with
  the learner's reward computed on the learner's device (the same one on a GPU run);
* the k-NN reference set of the state-entropy reward is a view, not a copy.

Differences from SB3's buffer, all deliberate: observations are stored as float32 (SB3
keeps the observation space's dtype, e.g. float64 on MuJoCo, and the policy casts to
float32 anyway); indices come from torch's generator instead of NumPy's global one (both
seeded by SB3's ``set_random_seed``); ``optimize_memory_usage`` and observation
normalisation at sampling time (``VecNormalize``) are refused; observations must be flat.
Pickling (``save_replay_buffer``) stores the filled rows of ``storage`` on the CPU.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from gymnasium import spaces
from stable_baselines3.common.buffers import BaseBuffer
from stable_baselines3.common.type_aliases import ReplayBufferSamples
from stable_baselines3.common.utils import get_device

from pbrl.agents.replay import PreferenceReplayBuffer
from pbrl.learners.base import RewardLearner


class DeviceReplayBuffer(PreferenceReplayBuffer):
    """:class:`PreferenceReplayBuffer` with its storage on ``device`` (see the module docstring)."""

    def __init__(
        self,
        buffer_size: int,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        device: torch.device | str = "auto",
        n_envs: int = 1,
        optimize_memory_usage: bool = False,
        handle_timeout_termination: bool = True,
    ) -> None:
        if optimize_memory_usage:
            raise ValueError("DeviceReplayBuffer does not support optimize_memory_usage=True")
        BaseBuffer.__init__(self, buffer_size, observation_space, action_space, device, n_envs=n_envs)
        if len(self.obs_shape) != 1:
            raise ValueError(f"DeviceReplayBuffer stores flat observations only, got shape {self.obs_shape}")
        self.optimize_memory_usage = False
        self.handle_timeout_termination = handle_timeout_termination
        o, a = self.obs_shape[0], self.action_dim
        self._layout: dict[str, slice | int] = {
            "observations": slice(0, o), "next_observations": slice(o, 2 * o), "actions": slice(2 * o, 2 * o + a),
            "rewards": 2 * o + a, "dones": 2 * o + a + 1, "timeouts": 2 * o + a + 2, "bonus": 2 * o + a + 3,
        }
        self.storage = torch.zeros(self.buffer_size, self.n_envs, 2 * o + a + 4, device=self.device)
        self._make_views()

    def _make_views(self) -> None:
        for name, columns in self._layout.items():
            setattr(self, name, self.storage[..., columns])

    @property
    def device(self) -> torch.device:
        return self._device

    @device.setter
    def device(self, value: torch.device | str) -> None:
        """Moving the buffer moves its storage (SB3's ``load_replay_buffer`` sets the model's device)."""
        self._device = get_device(value)
        if "storage" in self.__dict__ and self.storage.device != self._device:
            self.storage = self.storage.to(self._device)
            self._make_views()

    # ------------------------------------------------------------------ SB3 API
    def add(self, obs: np.ndarray, next_obs: np.ndarray, action: np.ndarray, reward: np.ndarray, done: np.ndarray,
            infos: list[dict[str, Any]]) -> None:
        n = self.n_envs
        timeouts = [info.get("TimeLimit.truncated", False) for info in infos] if self.handle_timeout_termination else [0] * n
        row = np.concatenate([
            np.asarray(obs, np.float32).reshape(n, -1), np.asarray(next_obs, np.float32).reshape(n, -1),
            np.asarray(action, np.float32).reshape(n, self.action_dim), np.asarray(reward, np.float32).reshape(n, 1),
            np.asarray(done, np.float32).reshape(n, 1), np.asarray(timeouts, np.float32).reshape(n, 1), np.zeros((n, 1), np.float32),
        ], axis=1)
        self.storage[self.pos].copy_(torch.from_numpy(row), non_blocking=False)
        self.pos += 1
        if self.pos == self.buffer_size:
            self.full, self.pos = True, 0
        self._bonus_of_new_row()

    def sample(self, batch_size: int, env=None) -> ReplayBufferSamples:
        if env is not None:
            raise ValueError("DeviceReplayBuffer cannot normalise observations at sampling time (VecNormalize); "
                             "use PreferenceReplayBuffer")
        rows, recent = self.filled(), int(round(batch_size * self.recent_fraction))
        index = torch.randint(0, rows, (batch_size - recent,), device=self.device)
        if recent:  # QPA's hybrid replay: the recent part, last in the batch
            age = torch.randint(0, min(self.recent_window, rows), (recent,), device=self.device)  # 0 = the newest row
            index = torch.cat([index, (self.pos - 1 - age) % self.buffer_size])
        return self._get_samples(index)

    def _get_samples(self, batch_inds, env=None) -> ReplayBufferSamples:
        batch_inds = torch.as_tensor(batch_inds, device=self.device)
        env_inds = torch.randint(0, self.n_envs, (len(batch_inds),), device=self.device)
        batch = self.storage[batch_inds, env_inds]
        take = lambda name: batch[:, self._layout[name]]  # noqa: E731
        dones = take("dones") * (1 - take("timeouts"))
        samples = ReplayBufferSamples(take("observations"), take("actions"), take("next_observations"),
                                      dones.reshape(-1, 1), take("rewards").reshape(-1, 1))
        return self._with_rune(self._with_intrinsic(samples), take("bonus") if self._rune is not None else None)

    def _stored_states(self) -> torch.Tensor:
        rows = self.filled()
        return self.observations[:rows].reshape(rows * self.n_envs, -1)

    def relabel(self, learner: RewardLearner, chunk: int = 250_000) -> None:
        """``rewards[:rows] = r̂(s, a, s')`` in place, in chunks of 250k rows (the learner chunks its own forward)."""
        super().relabel(learner, chunk)

    def relabel_rows(self, learner: RewardLearner, start: int, stop: int) -> None:
        flat = lambda name: getattr(self, name)[start:stop].reshape((stop - start) * self.n_envs, -1).to(learner.device)  # noqa: E731
        rewards = learner.reward_tensor(flat("observations"), flat("actions"), flat("next_observations"))
        self.rewards[start:stop] = rewards.reshape(stop - start, self.n_envs).to(self.device)
        if self._rune is not None:
            self._relabel_bonus(start, stop)

    # ------------------------------------------------------------------ pickling
    def __getstate__(self) -> dict[str, Any]:
        state = {k: v for k, v in super().__getstate__().items() if k not in self._layout}
        state["storage"] = self.storage[: self.filled()].to("cpu", copy=True)  # a compact copy, not a view of all rows
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        filled = state.pop("storage")
        self.__dict__.update(state)
        self.storage = torch.zeros(self.buffer_size, self.n_envs, filled.shape[-1], device=self.device)
        self.storage[: len(filled)] = filled.to(self.device)
        self._make_views()
