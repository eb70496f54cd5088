"""B-Pref's scripted teacher restated line by line and compared with pbrl's ``SyntheticTeacher``
for the six B-Pref presets (docs/fidelity.md, the teacher table).

Reference: rll-research/BPref (commit f3ece2ecf04b5d11b276d9bbb19b8004c29429d1),

* ``reward_model.py`` ``RewardModel.get_label`` L372–422 — restated in :meth:`ReferenceTeacher.get_label`:
  skip filter on ``max(R¹, R²) > thres_skip`` (L376–389, and ``return None, …, []`` when no pair is
  kept), ``margin_index = |R¹ − R²| < thres_equal`` on the undiscounted sums of the kept pairs
  (L391–392), the myopic loop ``temp_r[:, :index+1] *= γ`` for ``index < H − 1`` (L394–401),
  ``rational_labels = 1*(R¹ < R²)`` (L403), Bradley–Terry ``softmax(β [R¹, R²])[:, 1]`` and
  ``torch.bernoulli`` iff ``teacher_beta > 0`` (L404–409), the mistake flip ``rand <= ε``
  (L413–417), and ``labels[margin_index] = -1`` last (L420);
* ``reward_model.py`` L152–156 — ``set_teacher_thres_skip/equal(new_margin)`` = ``new_margin × ε``,
  called with the first round's ``new_margin`` by ``train_PEBBLE.py`` L237–239 (the later rounds'
  rule is restated in ``tests/test_fidelity.py``);
* ``reward_model.py`` L699–704 (``train_soft_reward``) — label ``-1`` ("equally preferable") is
  trained on the target ½;
* the presets, ``scripts/<task>/<budget>/{oracle,noisy,mistake,skip,equal,myopic}/run_PEBBLE.sh``
  (e.g. ``scripts/walker_walk/1000/noisy/run_PEBBLE.sh`` L2): ``teacher_beta=-1`` (rational) or ``1``
  (noisy = pbrl's ``stoc``), ``teacher_gamma=0.9`` (myopic), ``teacher_eps_mistake/skip/equal=0.1``.

Encodings: B-Pref's label is 1 when σ² is preferred, 0 when σ¹ is, −1 when equal, and skipped pairs
are dropped from the returned arrays; pbrl's label is P[σ¹ ≻ σ²] (1.0, 0.0, ½) with NaN for a skipped
pair. :func:`as_pbrl` maps one onto the other; ``sa_t_1`` carries each pair's index through the
reference's filter, so the comparison also checks *which* pairs are kept.

Randomness: ``np.random.rand`` is the shared ``numpy.random.Generator`` (same seed on both sides).
``torch.bernoulli(ent)`` draws 1 with probability ``ent``; the exact comparison realises it as
``1{u ≥ 1 − ent}`` with ``u`` from the shared generator — the same draw order as pbrl (Bernoulli
draws first, then the mistake draws) and the coupling pbrl's ``1{u < p_left}`` uses. That realisation
is ours, so the stochastic preset is also compared in distribution with the literal
``torch.bernoulli`` over many draws. One inherent difference in draw counts: B-Pref draws the mistake
numbers for the kept pairs only, pbrl for every pair (a skipped pair's draw is thrown away); the skip
preset has ε = 0, so its labels do not depend on it, and the test pins the counts. Not a preset, so not
compared: B-Pref treats ``teacher_beta = 0`` as rational (``> 0`` is the stochastic test), pbrl's β = 0
answers at random (the paper's β → 0).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from pbrl.segments import Provenance, SegmentBatch, Segments, SegmentTruth
from pbrl.teachers.synthetic import PRESETS, SyntheticTeacher

MEAN_SEGMENT_RETURN = 20.0
"""``new_margin`` of the first round: thresholds ε × 20 = 2.0 for the skip and equal presets."""

REFERENCE_ARGS = {  # run_PEBBLE.sh teacher_* arguments per preset directory (noisy = pbrl's stoc)
    "oracle": dict(teacher_beta=-1, teacher_gamma=1, teacher_eps_mistake=0, teacher_eps_skip=0, teacher_eps_equal=0),
    "stoc": dict(teacher_beta=1, teacher_gamma=1, teacher_eps_mistake=0, teacher_eps_skip=0, teacher_eps_equal=0),
    "mistake": dict(teacher_beta=-1, teacher_gamma=1, teacher_eps_mistake=0.1, teacher_eps_skip=0, teacher_eps_equal=0),
    "skip": dict(teacher_beta=-1, teacher_gamma=1, teacher_eps_mistake=0, teacher_eps_skip=0.1, teacher_eps_equal=0),
    "equal": dict(teacher_beta=-1, teacher_gamma=1, teacher_eps_mistake=0, teacher_eps_skip=0, teacher_eps_equal=0.1),
    "myopic": dict(teacher_beta=-1, teacher_gamma=0.9, teacher_eps_mistake=0, teacher_eps_skip=0, teacher_eps_equal=0),
}


class ReferenceTeacher:
    """B-Pref ``RewardModel``'s teacher: the attributes of ``__init__`` (L130–137), the threshold
    setters (L152–156) and ``get_label`` (L372–422), with ``np.random.rand`` → ``rng.random`` and
    ``torch.bernoulli`` → ``bernoulli`` (default: the literal ``torch.bernoulli``)."""

    def __init__(self, teacher_beta, teacher_gamma, teacher_eps_mistake, teacher_eps_skip, teacher_eps_equal):
        self.teacher_beta = teacher_beta
        self.teacher_gamma = teacher_gamma
        self.teacher_eps_mistake = teacher_eps_mistake
        self.teacher_eps_equal = teacher_eps_equal
        self.teacher_eps_skip = teacher_eps_skip
        self.teacher_thres_skip = 0
        self.teacher_thres_equal = 0

    def set_teacher_thres_skip(self, new_margin):
        self.teacher_thres_skip = new_margin * self.teacher_eps_skip

    def set_teacher_thres_equal(self, new_margin):
        self.teacher_thres_equal = new_margin * self.teacher_eps_equal

    def get_label(self, sa_t_1, sa_t_2, r_t_1, r_t_2, rng, bernoulli=torch.bernoulli):
        sum_r_t_1 = np.sum(r_t_1, axis=1)
        sum_r_t_2 = np.sum(r_t_2, axis=1)

        # skip the query
        if self.teacher_thres_skip > 0:
            max_r_t = np.maximum(sum_r_t_1, sum_r_t_2)
            max_index = (max_r_t > self.teacher_thres_skip).reshape(-1)
            if sum(max_index) == 0:
                return None, None, None, None, []

            sa_t_1 = sa_t_1[max_index]
            sa_t_2 = sa_t_2[max_index]
            r_t_1 = r_t_1[max_index]
            r_t_2 = r_t_2[max_index]
            sum_r_t_1 = np.sum(r_t_1, axis=1)
            sum_r_t_2 = np.sum(r_t_2, axis=1)

        # equally preferable
        margin_index = (np.abs(sum_r_t_1 - sum_r_t_2) < self.teacher_thres_equal).reshape(-1)

        # perfectly rational
        seg_size = r_t_1.shape[1]
        temp_r_t_1 = r_t_1.copy()
        temp_r_t_2 = r_t_2.copy()
        for index in range(seg_size - 1):
            temp_r_t_1[:, :index + 1] *= self.teacher_gamma
            temp_r_t_2[:, :index + 1] *= self.teacher_gamma
        sum_r_t_1 = np.sum(temp_r_t_1, axis=1)
        sum_r_t_2 = np.sum(temp_r_t_2, axis=1)

        rational_labels = 1 * (sum_r_t_1 < sum_r_t_2)
        if self.teacher_beta > 0:  # Bradley-Terry rational model
            r_hat = torch.cat([torch.Tensor(sum_r_t_1),
                               torch.Tensor(sum_r_t_2)], axis=-1)
            r_hat = r_hat * self.teacher_beta
            ent = F.softmax(r_hat, dim=-1)[:, 1]
            self.ent = ent  # kept for the statistical comparison
            labels = bernoulli(ent).int().numpy().reshape(-1, 1)
        else:
            labels = rational_labels

        # making a mistake
        len_labels = labels.shape[0]
        rand_num = rng.random(len_labels)
        noise_index = rand_num <= self.teacher_eps_mistake
        labels[noise_index] = 1 - labels[noise_index]

        # equally preferable
        labels[margin_index] = -1

        return sa_t_1, sa_t_2, r_t_1, r_t_2, labels


def coupled_bernoulli(rng: np.random.Generator):
    """``torch.bernoulli(ent)`` realised as ``1{u ≥ 1 − ent}``, ``u`` from ``rng`` (see the module docstring)."""
    return lambda ent: torch.as_tensor(rng.random(len(ent)) >= 1.0 - ent.numpy().astype(np.float64)).float()


def as_pbrl(kept: np.ndarray, labels: np.ndarray, n_pairs: int) -> np.ndarray:
    """B-Pref's (kept pair indices, labels ∈ {0, 1, −1}) as pbrl's ``[B]`` labels: P[σ¹ ≻ σ²], ½ for equal, NaN if skipped."""
    out = np.full(n_pairs, np.nan)
    labels = np.asarray(labels).reshape(-1)
    out[np.asarray(kept, dtype=np.int64)] = np.where(labels == -1, 0.5, 1.0 - labels)
    return out


def batch(rewards: np.ndarray) -> SegmentBatch:
    """Segments whose only content is their true per-step rewards ``[B, H]``."""
    b, h = rewards.shape
    zeros = np.zeros((b, h, 1), np.float32)
    return SegmentBatch(Segments(zeros, zeros, zeros), SegmentTruth(rewards, np.zeros((b, h))),
                        Provenance("test", np.zeros(b, np.int64), np.zeros(b, np.int64)))


def run_both(preset: str, left: np.ndarray, right: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray, dict]:
    """pbrl's labels and the restated reference's (as pbrl labels), each from ``default_rng(seed)``,
    with the number of uniforms each drew."""
    teacher = SyntheticTeacher(PRESETS[preset])
    teacher.calibrate(MEAN_SEGMENT_RETURN, round_index=0)
    reference = ReferenceTeacher(**REFERENCE_ARGS[preset])
    reference.set_teacher_thres_skip(MEAN_SEGMENT_RETURN)  # train_PEBBLE.py L238–239
    reference.set_teacher_thres_equal(MEAN_SEGMENT_RETURN)
    assert (teacher.skip_threshold, teacher.equal_threshold) == (reference.teacher_thres_skip, reference.teacher_thres_equal)

    rng_pbrl, rng_ref = np.random.default_rng(seed), np.random.default_rng(seed)
    ours = teacher.label(batch(left), batch(right), rng_pbrl)

    n = len(left)
    ids = np.arange(n).reshape(n, 1)  # sa_t: each pair's index, carried through the skip filter
    kept, _, _, _, labels = reference.get_label(ids, ids.copy(), left[:, :, None], right[:, :, None], rng_ref,
                                                bernoulli=coupled_bernoulli(rng_ref))
    kept = np.empty(0, np.int64) if kept is None else kept.reshape(-1)
    theirs = as_pbrl(kept, labels, n)
    draws = {side: _draws(seed, rng) for side, rng in (("pbrl", rng_pbrl), ("reference", rng_ref))}
    draws["kept"] = len(kept)
    return ours, theirs, draws


def _draws(seed: int, used: np.random.Generator, most: int = 4096) -> int:
    """How many ``random()`` doubles ``used`` has drawn since ``default_rng(seed)``."""
    fresh = np.random.default_rng(seed)
    for count in range(most + 1):
        if fresh.bit_generator.state == used.bit_generator.state:
            return count
        fresh.random()
    raise AssertionError("more draws than expected")


# ----------------------------------------------------------------------------- the segment pairs
H = 4
PAIRS = [  # (σ¹ rewards, σ² rewards), H = 4; thresholds 2.0 (skip, equal), myopic weights [.729, .81, .9, 1]
    ([1, 1, 1, 1], [0, 0, 0, 0]),               # 4 vs 0: σ¹
    ([0, 0, 0, 0.5], [1, 1, 0.5, 0.5]),         # 0.5 vs 3: σ²
    ([1, 0, 1, 0], [0, 1, 0, 1]),               # tie 2 = 2: σ¹ (ties → σ¹); skip: max = 2.0 exactly → skipped; myopic 1.629 < 1.81: σ²
    ([0.25] * 4, [0.5, 0, 0, 0]),               # 1 vs 0.5: equal (|Δ| < 2), skipped (max ≤ 2)
    ([0, 0, 1, 0], [0, 0, 0, 0.9375]),          # 1 vs 0.9375: σ¹; myopic 0.9 < 0.9375: σ² (step H−2 weighs γ)
    ([1, 0, 0, 0], [0, 0, 0, 0.75]),            # σ¹; myopic 0.729 < 0.75: σ² (step 0 weighs γ^3)
    ([2, 2, -1, 0], [0, 0, 1, 1.5]),            # 3 vs 2.5: σ¹, equal; myopic 2.178 < 2.4: σ²
    ([-1, -1, -1, -1], [-2, 0, 0, 0]),          # −4 vs −2: σ²; skipped (max < 0); |Δ| = 2 exactly: not equal
    ([3, 0, 0, 0], [1, 0, 0, 0]),               # 3 vs 1: σ¹; |Δ| = 2 exactly: not equal; kept (3 > 2)
    ([0, 0.5, 0.5, 1.25], [2.25, 0, 0, 0]),     # tie 2.25: σ¹, equal; kept (2.25 > 2); myopic 2.105 > 1.640: σ¹
    ([0, 0, 0, 0], [0, 0, 0, 2.25]),            # σ²; kept; not equal
    ([1.5, 0, 0, 0], [0, 0, 0, 0.25]),          # σ¹; equal; skipped
]
LEFT = np.array([p[0] for p in PAIRS], dtype=np.float64)
RIGHT = np.array([p[1] for p in PAIRS], dtype=np.float64)

EXPECTED = {  # by hand, pbrl's encoding (1 = σ¹, 0 = σ², ½ = equal, nan = skipped): pins that the pairs trigger each knob
    "oracle": [1, 0, 1, 1, 1, 1, 1, 0, 1, 1, 0, 1],
    "skip": [1, 0, np.nan, np.nan, np.nan, np.nan, 1, np.nan, 1, 1, 0, np.nan],
    "equal": [1, 0, 0.5, 0.5, 0.5, 0.5, 0.5, 0, 1, 0.5, 0, 0.5],
    "myopic": [1, 0, 0, 1, 0, 0, 0, 0, 1, 1, 0, 1],
}


def random_pairs(seed: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` pairs of quarter-step rewards in [−1, 2] (exact sums; ties and near-equal returns are common)."""
    rng = np.random.default_rng(seed)
    return rng.integers(-4, 9, (n, H)) / 4.0, rng.integers(-4, 9, (n, H)) / 4.0


# ----------------------------------------------------------------------------- the comparisons
@pytest.mark.parametrize("preset", list(REFERENCE_ARGS))
def test_get_label_restated_gives_pbrls_labels_and_kept_pairs(preset: str) -> None:
    assert set(REFERENCE_ARGS) == set(PRESETS)
    ours, theirs, draws = run_both(preset, LEFT, RIGHT, seed=0)
    np.testing.assert_array_equal(ours, theirs)  # NaN (skipped) at the same places
    np.testing.assert_array_equal(np.flatnonzero(~np.isnan(ours)), np.flatnonzero(~np.isnan(theirs)))
    if preset in EXPECTED:
        np.testing.assert_array_equal(theirs, EXPECTED[preset])
    bernoulli = REFERENCE_ARGS[preset]["teacher_beta"] > 0
    assert draws["pbrl"] == len(LEFT) * (2 if bernoulli else 1)
    # B-Pref draws its mistake numbers for the kept pairs only (6 of 12 under skip), pbrl for every pair
    assert draws["reference"] == (len(LEFT) if bernoulli else 0) + draws["kept"]
    assert draws["kept"] == (6 if preset == "skip" else len(LEFT))


@pytest.mark.parametrize("preset", list(REFERENCE_ARGS))
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_get_label_restated_on_random_pairs(preset: str, seed: int) -> None:
    left, right = random_pairs(seed, 400)
    ours, theirs, _ = run_both(preset, left, right, seed)
    np.testing.assert_array_equal(ours, theirs)
    oracle, _, _ = run_both("oracle", left, right, seed)
    if preset == "mistake":  # the shared draws flip the same pairs; about ε of them
        flipped = (ours != oracle).mean()
        assert 0.05 < flipped < 0.15
    if preset == "stoc":
        assert 0.1 < (ours != oracle).mean() < 0.5
    if preset in ("skip", "equal"):
        assert 0.1 < (np.isnan(ours) if preset == "skip" else ours == 0.5).mean() < 0.9


def test_stochastic_preset_matches_literal_torch_bernoulli_in_distribution() -> None:
    """β = 1: pbrl's frequency of "σ¹" and the literal ``torch.bernoulli`` reference's, per return gap,
    against the reference's ``1 − softmax(β [R¹, R²])[:, 1]``, over 20,000 copies of each pair."""
    gaps = np.array([0.0, 0.5, 1.0, 2.0, -1.25, -3.0])
    n = 20_000
    lefts = np.concatenate([np.tile([[0.5, 0.25, 0.0, g]], (n, 1)) for g in gaps])  # R¹ = 0.75 + g
    rights = np.tile([[0.25, 0.25, 0.25, 0.0]], (len(gaps) * n, 1))  # R² = 0.75

    teacher = SyntheticTeacher(PRESETS["stoc"])
    ours = teacher.label(batch(lefts), batch(rights), np.random.default_rng(11)).reshape(len(gaps), n)

    reference = ReferenceTeacher(**REFERENCE_ARGS["stoc"])
    torch.manual_seed(12)
    ids = np.arange(len(lefts)).reshape(-1, 1)
    _, _, _, _, labels = reference.get_label(ids, ids, lefts[:, :, None], rights[:, :, None], np.random.default_rng(13))
    theirs = (1 - labels.reshape(len(gaps), n)).astype(np.float64)
    p_left = 1.0 - reference.ent.numpy().reshape(len(gaps), n)[:, 0].astype(np.float64)

    np.testing.assert_allclose(p_left, 1 / (1 + np.exp(-gaps)), atol=1e-6)  # softmax of β [R¹, R²] = σ(β ΔR)
    tolerance = 4.5 * np.sqrt(p_left * (1 - p_left) / n) + 1e-9  # 4.5 σ of one frequency
    assert (np.abs(ours.mean(axis=1) - p_left) < tolerance).all(), (ours.mean(axis=1), p_left)
    assert (np.abs(theirs.mean(axis=1) - p_left) < tolerance).all(), (theirs.mean(axis=1), p_left)


def test_myopic_weights_of_the_reference_loop() -> None:
    """The loop L397–399 gives step t of an H-step segment the weight γ^(H−1−t) (pbrl's ``weights``)."""
    for horizon in (1, 2, 4, 50):
        r = np.ones((1, horizon, 1))
        for index in range(horizon - 1):
            r[:, :index + 1] *= 0.9
        np.testing.assert_allclose(r[0, :, 0], 0.9 ** np.arange(horizon - 1, -1, -1), rtol=1e-12)


def test_all_pairs_skipped_returns_no_labels() -> None:
    """``if sum(max_index) == 0: return None, …, []`` (L380–381): pbrl answers NaN for every pair."""
    left, right = np.full((3, H), 0.25), np.full((3, H), 0.5)  # max return 2.0, not above the threshold
    ours, theirs, draws = run_both("skip", left, right, seed=0)
    assert np.isnan(ours).all() and np.isnan(theirs).all() and draws["kept"] == 0 and draws["reference"] == 0


def test_preset_knobs_are_the_reference_scripts() -> None:
    for preset, args in REFERENCE_ARGS.items():
        config = PRESETS[preset]
        assert (math.isinf(config.beta) if args["teacher_beta"] <= 0 else config.beta == args["teacher_beta"])
        assert (config.gamma, config.eps_mistake, config.eps_skip, config.eps_equal) == (
            args["teacher_gamma"], args["teacher_eps_mistake"], args["teacher_eps_skip"], args["teacher_eps_equal"])
