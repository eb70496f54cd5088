"""Export an offline preference dataset to Minari (``pip install 'pbrl[minari]'``).

Minari stores episodes, not preferences, so the export has two parts in the Minari dataset's
directory (``minari.storage.get_dataset_path(dataset_id)``):

* the episodes as a regular Minari dataset — episode ``i`` is pbrl's episode ``i``, with
  ``T + 1`` observations (the last one is the final ``next_obs``), normalised actions, true
  rewards, terminations, truncations, and ``infos["success"]`` (the reset entry is 0);
* ``pbrl_preferences.npz`` — ``segment_episode``, ``segment_start``, ``segment_length``,
  ``left``, ``right``, ``label`` (as in the HDF5 layout; segment ``k`` is steps
  ``start..start+T−1`` of Minari episode ``segment_episode[k]``) and ``metadata`` (the JSON
  string: teacher, collection, policies). A dataset people labeled
  (:mod:`pbrl.datasets.human_labels`) exports the same way: its pairs and aggregated labels
  here, and in ``metadata`` the aggregation, each annotator's weight, known-answer accuracy
  and answers, who was dropped, and the source dataset.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np

from pbrl.datasets.offline import OfflinePreferenceData

PREFERENCES_FILE = "pbrl_preferences.npz"


def to_minari(data: OfflinePreferenceData, dataset_id: str, description: str | None = None) -> Path:
    """Create Minari dataset ``dataset_id`` (e.g. ``"pbrl/drawer-open/regret-v0"``) and return its directory."""
    import gymnasium as gym
    import minari
    from minari.data_collector.episode_buffer import EpisodeBuffer
    from minari.storage import get_dataset_path

    ep = data.episodes
    buffers = []
    for i, (start, length) in enumerate(zip(ep.start, ep.length)):
        steps = slice(start, start + length)
        buffers.append(EpisodeBuffer(
            id=i, observations=np.concatenate([ep.obs[steps], ep.next_obs[start + length - 1][None]]),
            actions=ep.actions[steps], rewards=ep.rewards[steps], terminations=ep.terminated[steps],
            truncations=ep.truncated[steps], infos={"success": np.concatenate([[0.0], ep.successes[steps]]).astype(np.float32)},
        ))
    obs_dim, act_dim = ep.obs.shape[1], ep.actions.shape[1]
    with warnings.catch_warnings():  # Minari nags about author e-mail and env specs; pbrl ids are not gym-registered
        warnings.simplefilter("ignore", UserWarning)
        minari.create_dataset_from_buffers(
            dataset_id, buffers, algorithm_name="pbrl collect", author="pbrl",
            observation_space=gym.spaces.Box(-np.inf, np.inf, (obs_dim,), np.float32),
            action_space=gym.spaces.Box(-1.0, 1.0, (act_dim,), np.float32),
            description=description or f"pbrl offline preference dataset for {data.env_id}; labeled pairs in {PREFERENCES_FILE}",
        )
    path = Path(get_dataset_path(dataset_id))
    np.savez(
        path / PREFERENCES_FILE, segment_episode=data.segment_episode, segment_start=data.segment_start,
        segment_length=np.int64(data.segment_length), left=data.left, right=data.right, label=data.labels,
        env_id=np.str_(data.env_id), metadata=np.str_(json.dumps(data.metadata, sort_keys=True)),
    )
    return path
