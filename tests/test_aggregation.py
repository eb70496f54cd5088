"""Label aggregation on a hand-computed example (3 annotators × 5 pairs): majority with ties as ½, one
Dawid–Skene EM iteration worked out in fractions below, and the converged model against a plain restatement."""

from fractions import Fraction as F

import numpy as np
import pytest

from pbrl.labeling.aggregation import Answers, aggregate, dawid_skene, majority

# value = P[left ≻ right] as answered: 1 left, 0 right, ½ equal; C skipped pair 5
#            pair:  1  2  3  4   5
TABLE = {"A": [1, 1, 0, 1, 1],
         "B": [1, 0, 0, 1, 0],
         "C": [0, 0, 1, .5, None]}


def _answers() -> Answers:
    rows = [(i, j, v) for j, name in enumerate(TABLE) for i, v in enumerate(TABLE[name]) if v is not None]
    pair, annotator, value = (np.array(column) for column in zip(*rows))
    return Answers(pair, annotator, value.astype(float), 5, tuple(TABLE))


def test_majority_with_ties_as_half():
    # means 2/3, 1/3, 1/3, 5/6 ("equal" counts ½), 1/2 (A left, B right: a tie)
    np.testing.assert_array_equal(majority(_answers()), [1, 0, 0, 1, 0.5])
    assert np.isnan(majority(Answers(np.array([0]), np.array([0]), np.array([1.0]), 2, ("A",)))[1])  # nobody answered


def test_one_dawid_skene_iteration_by_hand():
    # Start: q = majority means (2/3, 1/3, 1/3, 5/6, 1/2); α = 1, so every count gets +1 and n_j + 3 below.
    # A (L L R L L):  p = (1 + 2/3 + 1/3 + (1 − 1/3) + 5/6 + 1/2) / 8 = 4/8,  r = (1 + 1/3 + 2/3 + 1/3 + 1/6 + 1/2) / 8 = 3/8,
    #                 e = 1/8,  w_A = log(4/3)
    # B (L R R L R):  p = (1 + 2/3 + 2/3 + 2/3 + 5/6 + 1/2) / 8 = 13/24,  r = (1 + 1/3 + 1/3 + 1/3 + 1/6 + 1/2) / 8 = 8/24,
    #                 e = 3/24,  w_B = log(13/8)
    # C (R R L =):    p = (1 + 1/3 + 2/3 + 1/3) / 7 = 7/21,  r = (1 + 2/3 + 1/3 + 2/3) / 7 = 8/21,  e = (1 + 1) / 7 = 6/21,
    #                 w_C = log(7/8)   (C agrees less than chance: a negative weight)
    # E-step, logit q_i = Σ_j w_j s_ij:
    #   pair 1 (+ + −): 4/3 · 13/8 · 8/7 = 52/21   → q = 52/73
    #   pair 2 (+ − −): 4/3 · 8/13 · 8/7 = 256/273 → q = 256/529
    #   pair 3 (− − +): 3/4 · 8/13 · 7/8 = 21/52   → q = 21/73
    #   pair 4 (+ + 0): 4/3 · 13/8      = 13/6     → q = 13/19
    #   pair 5 (+ −  ): 4/3 · 8/13      = 32/39    → q = 32/71   (majority's tie goes to B, the more reliable)
    model = dawid_skene(_answers(), smoothing=1.0, iterations=1)
    as_float = lambda values: np.array([float(v) for v in values])  # noqa: E731
    np.testing.assert_allclose(model.p, as_float([F(4, 8), F(13, 24), F(7, 21)]))
    np.testing.assert_allclose(model.r, as_float([F(3, 8), F(8, 24), F(8, 21)]))
    np.testing.assert_allclose(model.e, as_float([F(1, 8), F(3, 24), F(6, 21)]))
    np.testing.assert_allclose(model.weights, np.log(as_float([F(4, 3), F(13, 8), F(7, 8)])))
    np.testing.assert_allclose(model.posterior, as_float([F(52, 73), F(256, 529), F(21, 73), F(13, 19), F(32, 71)]))
    np.testing.assert_array_equal(model.labels, [1, 0, 0, 1, 0])


def _restated(table: dict, alpha: float, known: dict[int, float], iterations: int = 500) -> tuple[list, np.ndarray]:
    """The same EM written out per annotator and per answer, as the module docstring states it."""
    names = list(table)
    q = [np.mean([row[i] for row in table.values() if row[i] is not None]) for i in range(5)]
    q = [known.get(i, value) for i, value in enumerate(q)]
    for _ in range(iterations):
        w = {}
        for name in names:
            given = [(i, v) for i, v in enumerate(table[name]) if v is not None]
            p = (alpha + sum(q[i] if v == 1 else 1 - q[i] if v == 0 else 0 for i, v in given)) / (3 * alpha + len(given))
            r = (alpha + sum(1 - q[i] if v == 1 else q[i] if v == 0 else 0 for i, v in given)) / (3 * alpha + len(given))
            w[name] = np.log(p / r)
        score = [sum(w[n] * (2 * table[n][i] - 1) for n in names if table[n][i] is not None) for i in range(5)]
        q = [known.get(i, 1 / (1 + np.exp(-s))) for i, s in enumerate(score)]
    return [w[n] for n in names], 1 / (1 + np.exp(-np.array(score)))


@pytest.mark.parametrize("known", [{}, {4: 0.0}, {0: 0.0, 2: 1.0}])
def test_converged_dawid_skene_matches_a_plain_restatement(known):
    model = dawid_skene(_answers(), known, smoothing=0.5, iterations=500, tol=0.0)
    weights, posterior = _restated(TABLE, 0.5, known)
    np.testing.assert_allclose(model.weights, weights, rtol=1e-9)
    np.testing.assert_allclose(model.posterior, posterior, rtol=1e-9)  # known pairs too: labels are the people's vote


def test_known_answers_anchor_which_annotator_is_reliable():
    # one careful and one backwards annotator explain the answers equally well until a known answer says which is which
    truth = np.array([1, 0, 1, 1, 0, 0], float)
    answers = Answers(np.tile(np.arange(6), 2), np.repeat([0, 1], 6), np.concatenate([truth, 1 - truth]), 6,
                      ("careful", "backwards"))
    model = dawid_skene(answers, {0: 1.0})
    assert model.weights[0] > 0 > model.weights[1]
    np.testing.assert_array_equal(model.labels, truth)
    assert (dawid_skene(answers, {0: 0.0}).labels == 1 - truth).all()  # the anchor decides, nothing else
    np.testing.assert_array_equal(majority(answers), np.full(6, 0.5))


def test_one_answer_per_pair_is_kept_and_bad_input_is_refused():
    answers = Answers(np.arange(4), np.array([0, 0, 1, 1]), np.array([1.0, 0.0, 0.0, 0.5]), 4, ("a", "b"))
    np.testing.assert_array_equal(aggregate(answers), [1, 0, 0, 0.5])
    np.testing.assert_array_equal(aggregate(answers, "majority"), [1, 0, 0, 0.5])
    np.testing.assert_array_equal(majority(answers.without(["b"]))[:2], [1, 0])
    assert np.isnan(majority(answers.without(["b"]))[2:]).all()
    with pytest.raises(ValueError, match="aggregation method 'mean' is unknown"):
        aggregate(answers, "mean")
    with pytest.raises(ValueError, match="answers.value"):
        Answers(np.arange(1), np.zeros(1, int), np.array([0.7]), 1, ("a",))
    with pytest.raises(ValueError, match="smoothing"):
        dawid_skene(answers, smoothing=0.0)
