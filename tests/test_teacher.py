"""The B-Pref synthetic teacher: each knob on crafted segments whose labels are known by hand."""

import math

import numpy as np
import pytest

from pbrl.teachers import PRESETS, RegretTeacherConfig, SyntheticTeacher, SyntheticTeacherConfig


def rewards(*rows):
    return np.array(rows, dtype=np.float64)


def test_oracle_prefers_higher_return_and_ties_go_left():
    teacher = SyntheticTeacher(PRESETS["oracle"])
    left = rewards([1, 1, 1], [0, 0, 0], [2, 0, 0])
    right = rewards([0, 0, 0], [1, 0, 0], [0, 0, 2])
    labels = teacher.label_rewards(left, right, np.random.default_rng(0))
    np.testing.assert_array_equal(labels, [1.0, 0.0, 1.0])  # tie (2 vs 2) → left, as B-Pref


def test_myopia_weights_later_steps_more():
    # Undiscounted returns equal (3 vs 3); with γ = 0.5, weights are [0.25, 0.5, 1]:
    # left = 3·0.25 = 0.75, right = 3·1 = 3 → right preferred.
    teacher = SyntheticTeacher(SyntheticTeacherConfig(gamma=0.5))
    labels = teacher.label_rewards(rewards([3, 0, 0]), rewards([0, 0, 3]), np.random.default_rng(0))
    assert labels[0] == 0.0
    # The rational (γ = 1) teacher calls it a tie → left.
    assert SyntheticTeacher().label_rewards(rewards([3, 0, 0]), rewards([0, 0, 3]), np.random.default_rng(0))[0] == 1.0


def test_rationality_matches_boltzmann_probability():
    # P[left ≻ right] = σ(β (R¹ − R²)) = σ(1 · 1) ≈ 0.731
    teacher = SyntheticTeacher(SyntheticTeacherConfig(beta=1.0))
    n = 20000
    left, right = np.tile(rewards([1.0, 0.5]), (n, 1)), np.tile(rewards([0.25, 0.25]), (n, 1))
    labels = teacher.label_rewards(left, right, np.random.default_rng(1))
    assert abs(labels.mean() - 1 / (1 + math.exp(-1.0))) < 0.01
    # β = 0: coin flips.
    coin = SyntheticTeacher(SyntheticTeacherConfig(beta=0.0)).label_rewards(left, right, np.random.default_rng(2))
    assert abs(coin.mean() - 0.5) < 0.015


def test_mistake_flips_with_probability_epsilon():
    teacher = SyntheticTeacher(SyntheticTeacherConfig(eps_mistake=0.1))
    n = 20000
    labels = teacher.label_rewards(np.ones((n, 2)), np.zeros((n, 2)), np.random.default_rng(3))
    assert abs((labels == 0.0).mean() - 0.1) < 0.01


def test_skip_threshold_is_a_fraction_of_mean_segment_return():
    teacher = SyntheticTeacher(SyntheticTeacherConfig(eps_skip=0.5))
    teacher.calibrate(mean_segment_return=10.0)  # threshold = 5
    labels = teacher.label_rewards(rewards([2, 2], [3, 3], [1, 1]), rewards([1, 1], [0, 0], [2, 3]), np.random.default_rng(0))
    # max returns 4 (skip), 6 (keep, left wins), 5 (≤ 5: skip)
    assert np.isnan(labels[0]) and labels[1] == 1.0 and np.isnan(labels[2])


def test_equal_threshold_gives_half():
    teacher = SyntheticTeacher(SyntheticTeacherConfig(eps_equal=0.1))
    teacher.calibrate(mean_segment_return=20.0)  # threshold = 2
    labels = teacher.label_rewards(rewards([5, 5], [5, 5]), rewards([4, 5], [1, 1]), np.random.default_rng(0))
    np.testing.assert_array_equal(labels, [0.5, 1.0])  # |10−9| < 2 → ½ ; |10−2| ≥ 2 → left


def test_equal_overrides_mistake_as_in_bpref():
    teacher = SyntheticTeacher(SyntheticTeacherConfig(eps_mistake=1.0, eps_equal=0.1))
    teacher.calibrate(20.0)
    labels = teacher.label_rewards(rewards([5, 5], [9, 9]), rewards([4, 5], [0, 0]), np.random.default_rng(0))
    np.testing.assert_array_equal(labels, [0.5, 0.0])  # second pair flipped by the certain mistake


def test_presets_are_the_six_bpref_teachers():
    assert set(PRESETS) == {"oracle", "stoc", "mistake", "skip", "equal", "myopic"}
    assert PRESETS["stoc"].beta == 1.0 and PRESETS["mistake"].eps_mistake == 0.1
    assert PRESETS["skip"].eps_skip == 0.1 and PRESETS["equal"].eps_equal == 0.1 and PRESETS["myopic"].gamma == 0.9
    assert math.isinf(PRESETS["oracle"].beta)
    assert all(config.preset == name and config.resolved() is config for name, config in PRESETS.items())


def test_a_config_is_a_preset_with_its_knobs_overridden():
    mistake = SyntheticTeacherConfig("mistake", eps_mistake=0.2, gamma=0.5)
    assert (mistake.beta, mistake.eps_skip) == (None, None)  # unset: the preset's, so a preset change carries over
    assert mistake.resolved() == SyntheticTeacherConfig("mistake", math.inf, 0.5, 0.2, 0.0, 0.0)
    assert SyntheticTeacherConfig("stoc").resolved().beta == 1.0 and SyntheticTeacherConfig("stoc", beta=2.0).resolved().beta == 2.0
    assert SyntheticTeacher(SyntheticTeacherConfig("myopic")).config.gamma == 0.9
    regret = RegretTeacherConfig("skip", expert="agent.zip").resolved()
    assert isinstance(regret, RegretTeacherConfig) and regret.eps_skip == 0.1 and regret.expert == "agent.zip"
    with pytest.raises(ValueError, match="teacher.expert_samples"):
        RegretTeacherConfig(expert_samples=0)


@pytest.mark.parametrize("knob", [{"gamma": 0.0}, {"eps_mistake": 1.5}, {"beta": -1.0}, {"eps_skip": -0.1}])
def test_out_of_range_knobs_name_the_field(knob):
    with pytest.raises(ValueError, match=f"teacher.{next(iter(knob))}"):
        SyntheticTeacherConfig(**knob)


def test_unknown_preset():
    with pytest.raises(ValueError, match=r"teacher.preset='perfect' is unknown"):
        SyntheticTeacherConfig("perfect")


def test_the_loop_stores_a_teachers_labels_and_nothing_for_queued_people(make_loop, log):
    from pbrl.query import QueryConfig
    from pbrl.store import PreferenceStore
    from pbrl.teachers import QueuedTeacher

    class Page(QueuedTeacher):
        def __init__(self):
            self.asked = []

        def ask(self, query_ids, store):
            self.asked.append(list(query_ids))
            return np.full(len(query_ids), np.nan)

    def round_with(teacher):
        store = PreferenceStore(":memory:")
        loop = make_loop(log, teacher=teacher, store=store, query=QueryConfig(strategy="uniform"), budget=6, per_round=6, segment_length=10)
        return loop.run_round(300, [1.0]), store

    result, store = round_with(SyntheticTeacher(name="oracle"))
    stored = store.execute("SELECT label, annotator FROM labels ORDER BY query_id")
    assert [label for label, _ in stored] == list(result.labels) and {who for _, who in stored} == {"oracle"}
    page = Page()
    result, store = round_with(page)
    assert len(page.asked[0]) == 6 and store.counts().asked == 6 and store.counts().labeled == 0
    assert np.isnan(result.labels).all()
