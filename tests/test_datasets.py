"""Offline preference datasets: building blocks, labels, and the bit-for-bit HDF5 round trip."""

import math
from dataclasses import fields

import numpy as np
import pytest

from pbrl.datasets import Episodes, OfflinePreferenceData, cut_segments, draw_pairs, label_dataset, stack_episodes
from pbrl.teachers.synthetic import SyntheticTeacher, SyntheticTeacherConfig


def fake_episodes(rng: np.random.Generator, lengths=(30, 12, 25), sim_states: bool = True) -> Episodes:
    episodes = []
    for length in lengths:
        episode = {
            "obs": rng.normal(size=(length, 4)), "actions": rng.uniform(-1, 1, size=(length, 2)),
            "next_obs": rng.normal(size=(length, 4)), "rewards": rng.uniform(0, 1, size=length),
            "successes": (rng.random(length) < 0.1).astype(float), "terminated": np.zeros(length, bool),
            "truncated": np.arange(length) == length - 1,
        }
        if sim_states:
            episode["sim_states"] = rng.normal(size=(length, 7))
        episodes.append(episode)
    return stack_episodes(episodes, policies=range(len(lengths)))


def fake_dataset(seed: int = 0, teacher=None, **kwargs) -> OfflinePreferenceData:
    rng = np.random.default_rng(seed)
    episodes = fake_episodes(rng, **kwargs)
    seg_episode, seg_start = cut_segments(episodes, 40, 10, rng)
    left, right = draw_pairs(40, 60, rng)
    data = OfflinePreferenceData("test:fake", episodes, seg_episode, seg_start, 10, left, right,
                                 np.full(60, np.nan, np.float32), {"note": "fake", "nested": {"beta": math.inf}})
    return label_dataset(data, teacher or SyntheticTeacher(SyntheticTeacherConfig("oracle")), rng)


def test_stack_episodes_back_to_back_with_exact_dtypes():
    episodes = fake_episodes(np.random.default_rng(0))
    assert episodes.start.tolist() == [0, 30, 42] and episodes.length.tolist() == [30, 12, 25]
    assert episodes.obs.dtype == np.float32 and episodes.sim_states.dtype == np.float64
    assert episodes.terminated.dtype == bool and episodes.steps == 67


def test_segments_stay_inside_their_episode_and_pairs_differ():
    rng = np.random.default_rng(1)
    episodes = fake_episodes(rng)
    episode, start = cut_segments(episodes, 500, 13, rng)
    assert 1 not in episode  # the 12-step episode holds no 13-step segment
    assert np.all(start + 13 <= episodes.length[episode]) and np.all(start >= 0)
    assert set(np.unique(episode)) == {0, 2}
    left, right = draw_pairs(5, 200, rng)
    assert np.all(left != right) and left.max() < 5 and right.max() < 5


def test_labels_follow_the_teacher_and_skips_leave_the_learner_dataset():
    data = fake_dataset()
    returns = data.segment_batch(np.arange(40)).truth.returns
    expected = (returns[data.left] >= returns[data.right]).astype(np.float32)
    np.testing.assert_array_equal(data.labels, expected)
    skipping = fake_dataset(teacher=SyntheticTeacher(SyntheticTeacherConfig("skip", eps_skip=1.0)))
    kept = ~np.isnan(skipping.labels)
    assert 0 < kept.sum() < len(kept)
    prefs = skipping.preferences()
    assert len(prefs) == kept.sum() and not np.isnan(prefs.labels).any()
    np.testing.assert_array_equal(prefs.left.obs, skipping.segment_batch(skipping.left[kept]).segments.obs)


def test_segment_batch_reads_the_right_steps():
    data = fake_dataset()
    batch = data.segment_batch(np.array([3]))
    row = data.episodes.start[data.segment_episode[3]] + data.segment_start[3]
    np.testing.assert_array_equal(batch.segments.obs[0], data.episodes.obs[row : row + 10])
    np.testing.assert_array_equal(batch.provenance.sim_states[0], data.episodes.sim_states[row : row + 10])
    np.testing.assert_array_equal(batch.truth.rewards[0], data.episodes.rewards[row : row + 10])


@pytest.mark.parametrize("sim_states", [True, False])
def test_hdf5_round_trip_is_bit_for_bit(tmp_path, sim_states):
    data = fake_dataset(sim_states=sim_states)
    path = data.save(tmp_path / "sub" / "data.h5")
    back = OfflinePreferenceData.load(path)
    assert back.env_id == data.env_id and back.segment_length == data.segment_length
    assert back.metadata == data.metadata and back.metadata["nested"]["beta"] == math.inf
    for f in fields(Episodes):
        a, b = getattr(data.episodes, f.name), getattr(back.episodes, f.name)
        if a is None:
            assert b is None
            continue
        assert a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes(), f.name
    for name in ("segment_episode", "segment_start", "left", "right", "labels"):
        a, b = getattr(data, name), getattr(back, name)
        assert a.dtype == b.dtype and a.tobytes() == b.tobytes(), name  # NaN labels included
    again = back.save(tmp_path / "again.h5")
    assert OfflinePreferenceData.load(again).labels.tobytes() == data.labels.tobytes()


def test_load_rejects_files_that_are_not_datasets(tmp_path):
    import h5py

    with h5py.File(tmp_path / "other.h5", "w") as f:
        f.attrs["format"] = "something-else"
    with pytest.raises(ValueError, match="not a pbrl preference dataset"):
        OfflinePreferenceData.load(tmp_path / "other.h5")
    with pytest.raises(FileNotFoundError, match="pbrl collect"):
        OfflinePreferenceData.load(tmp_path / "missing.h5")


def test_invalid_segments_are_rejected():
    data = fake_dataset()
    with pytest.raises(ValueError, match="past the end"):
        OfflinePreferenceData(data.env_id, data.episodes, np.array([1]), np.array([5]), 10,
                              np.array([0]), np.array([0]), np.array([1.0], np.float32))


def test_collect_scripted_metaworld_with_regret_labels(tmp_path):
    from pbrl.experiments.collect import CollectConfig, CollectTeacherConfig, collect

    config = CollectConfig(
        env="metaworld:drawer-open-v3", expert="scripted", weights=(0.0, 1.0), noise=(0.3,), episodes_per_policy=2,
        max_episode_steps=40, segment_length=10, segments=40, pairs=60, out=str(tmp_path / "d.h5"),
        teacher=CollectTeacherConfig(type="regret"),
    )
    data = OfflinePreferenceData.load(collect(config, log=lambda _: None))
    assert data.env_id == "metaworld:drawer-open-v3" and data.episodes.steps == 4 * 40
    assert data.episodes.sim_states is not None and data.episodes.actions.min() >= -1
    assert data.metadata["teacher"]["type"] == "regret" and data.metadata["teacher"]["name"] == "regret:oracle"
    assert [p["weight"] for p in data.metadata["policies"]] == [0.0, 1.0]
    assert data.metadata["collection"]["segment_length"] == 10
    weight = np.array([p["weight"] for p in data.metadata["policies"]])[data.episodes.policy[data.segment_episode]]
    mixed = weight[data.left] != weight[data.right]
    agree = (weight[data.left] > weight[data.right]) == (data.labels > 0.5)
    assert agree[mixed].mean() > 0.9  # the expert's advantage prefers the expert's segments


def test_collect_trains_a_sac_expert_and_labels_by_its_critic(tmp_path):
    from pbrl.agents.config import SACConfig
    from pbrl.experiments.collect import CollectConfig, CollectTeacherConfig, collect

    config = CollectConfig(
        env="gym:Reacher-v5", expert="sac", expert_steps=200, checkpoints=1, noise=(0.0, 0.5), episodes_per_policy=1,
        segment_length=10, segments=20, pairs=30, out=str(tmp_path / "r.h5"), teacher=CollectTeacherConfig(type="regret"),
        sac=SACConfig(learning_starts=100, batch_size=32, hidden_sizes=(16, 16), unsupervised_pretraining=False),
    )
    path = collect(config, log=lambda _: None)
    data = OfflinePreferenceData.load(path)
    assert [p["name"] for p in data.metadata["policies"]] == ["sac@0", "sac@0", "sac@200", "sac@200"]
    assert (tmp_path / "r.expert" / "agent.zip").exists() and not np.isnan(data.labels).any()


def test_minari_export_keeps_episodes_and_preferences(tmp_path, monkeypatch):
    pytest.importorskip("minari")
    import json

    import minari

    from pbrl.datasets.minari_export import PREFERENCES_FILE, to_minari

    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path))
    data = fake_dataset(sim_states=False)
    path = to_minari(data, "pbrl/fake/test-v0")
    exported = minari.load_dataset("pbrl/fake/test-v0")
    assert exported.total_episodes == len(data.episodes)
    for episode in exported.iterate_episodes():
        start, length = data.episodes.start[episode.id], data.episodes.length[episode.id]
        np.testing.assert_array_equal(episode.observations[:-1], data.episodes.obs[start : start + length])
        np.testing.assert_array_equal(episode.actions, data.episodes.actions[start : start + length])
        np.testing.assert_array_equal(episode.rewards, data.episodes.rewards[start : start + length])
    with np.load(path / PREFERENCES_FILE) as prefs:
        assert prefs["label"].tobytes() == data.labels.tobytes()
        np.testing.assert_array_equal(prefs["left"], data.left)
        assert json.loads(str(prefs["metadata"])) == data.metadata
