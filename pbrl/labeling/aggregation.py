"""One label per pair from several annotators' answers: majority vote, or Dawid–Skene EM.

Answers are values ``P[left ≻ right]`` in {1 (left), ½ (equal), 0 (right)}; skips are not
answers. Write ``s_ij = 2 a_ij − 1 ∈ {+1, 0, −1}`` for annotator ``j``'s answer on pair ``i``.

* **majority** — the mean answer ``m_i = mean_j a_ij``; label 1 if ``m_i > ½``, 0 if
  ``m_i < ½``, ½ on a tie (as many "left" as "right", "equal" counting half for each).
  Every annotator counts the same.
* **Dawid–Skene** (one-coin, with ties) — each pair has a hidden better side
  ``z_i ∈ {left, right}``; annotator ``j`` names the better side with probability ``p_j``,
  says "equal" with ``e_j`` and names the worse side with ``r_j = 1 − p_j − e_j``, whichever
  side is better. The confusion is symmetric and the prior is ``P[z_i = left] = ½`` because
  which segment of a pair is on the left is drawn at random (by the pair sampler and again
  on screen). EM alternates:

      E:  logit q_i = Σ_j w_j s_ij,        w_j = log(p_j / r_j),   q_i = P[z_i = left | answers]
      M:  p_j = (α + Σ_i [q_i 1(a_ij=1) + (1 − q_i) 1(a_ij=0)]) / (3α + n_j)
          r_j = (α + Σ_i [(1 − q_i) 1(a_ij=1) + q_i 1(a_ij=0)]) / (3α + n_j)
          e_j = (α + Σ_i 1(a_ij=½)) / (3α + n_j)

  from ``q_i = m_i`` (the majority's mean), until ``q`` moves less than ``tol``.
  ``n_j`` counts ``j``'s answers and ``α`` (``smoothing``) is a Laplace prior that keeps
  every ``w_j`` finite. The E-step is a *weighted* vote: ``w_j`` is annotator ``j``'s
  weight — large for a careful annotator, about 0 for one who clicks at random, negative
  for one who answers backwards (whose answers are then read flipped). Known-answer pairs
  (:mod:`pbrl.labeling.quality`) may be passed as ``known``: their ``q_i`` is held at the
  true answer inside EM, which anchors the weights — without any, "everyone is reliable"
  and "everyone answers backwards" explain the answers equally well, and a crowd of one
  careful and one adversarial annotator cannot be told apart. The label of every pair,
  known-answer ones included, is the weighted vote ``σ(Σ_j w_j s_ij)`` of the final
  weights, hardened like the majority (½ only on an exact tie), so labels come from people
  and never from the true reward.

**The default is Dawid–Skene.** Majority lets a careless or random annotator outvote a
careful one; Dawid–Skene learns how far to trust each from their agreement with the
others and with the known answers (tests/test_aggregation.py: a careful annotator's vote
breaks the majority's tie), and where the weights come out equal its weighted vote is the
majority. With one answer per pair both give that answer (unless known answers show its
annotator answers backwards).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

METHODS = ("dawid-skene", "majority")
DEFAULT_METHOD = "dawid-skene"


@dataclass(frozen=True)
class Answers:
    """Answers of several annotators on several pairs, one row per answer (skips left out).

    ``pair[n]`` indexes the pairs ``0..pairs−1``, ``annotator[n]`` indexes ``names`` and
    ``value[n] ∈ {0, ½, 1}`` is ``P[left ≻ right]`` as that annotator answered.
    """

    pair: np.ndarray
    annotator: np.ndarray
    value: np.ndarray
    pairs: int
    names: tuple[str, ...]

    def __post_init__(self) -> None:
        if not (len(self.pair) == len(self.annotator) == len(self.value)):
            raise ValueError("answers: pair, annotator and value must have one entry per answer")
        if len(self.pair) and (self.pair.min() < 0 or self.pair.max() >= self.pairs):
            raise ValueError(f"answers.pair must index 0..{self.pairs - 1}")
        if len(self.annotator) and (self.annotator.min() < 0 or self.annotator.max() >= len(self.names)):
            raise ValueError(f"answers.annotator must index the {len(self.names)} names")
        if not np.isin(self.value, (0.0, 0.5, 1.0)).all():
            raise ValueError("answers.value must be 0, 0.5 or 1 (skips are not answers)")

    def without(self, names: set[str] | tuple[str, ...] | list[str]) -> "Answers":
        """The same answers without those of ``names`` (dropped annotators)."""
        keep = ~np.isin(np.asarray(self.names, dtype=object)[self.annotator], list(names))
        return Answers(self.pair[keep], self.annotator[keep], self.value[keep], self.pairs, self.names)

    def vote(self) -> np.ndarray:
        """``[pairs, annotators]`` matrix of ``s_ij = 2 a_ij − 1`` (0 where ``j`` gave no answer or said equal)."""
        votes = np.zeros((self.pairs, len(self.names)))
        votes[self.pair, self.annotator] = 2.0 * self.value - 1.0
        return votes

    def answered(self) -> np.ndarray:
        """``[pairs]``: whether a pair has any answer."""
        return np.bincount(self.pair, minlength=self.pairs) > 0


def _harden(score: np.ndarray, answered: np.ndarray) -> np.ndarray:
    """1 above ½ (``score > 0`` as a log-odds or centred mean), 0 below, ½ on a tie, NaN without answers."""
    labels = np.where(score > 1e-9, 1.0, np.where(score < -1e-9, 0.0, 0.5))
    return np.where(answered, labels, np.nan).astype(np.float32)


def mean_answer(answers: Answers) -> np.ndarray:
    """``m_i``: each pair's mean answer (NaN where none)."""
    total = np.bincount(answers.pair, answers.value, minlength=answers.pairs)
    count = np.bincount(answers.pair, minlength=answers.pairs)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def majority(answers: Answers) -> np.ndarray:
    """Majority labels ``[pairs]``: 1, 0, ½ on a tie, NaN for a pair nobody answered."""
    mean = mean_answer(answers)
    return _harden(np.nan_to_num(mean - 0.5), answers.answered())


@dataclass(frozen=True)
class DawidSkene:
    """The fitted model: per-annotator ``p`` (names the better side), ``e`` (equal), ``r`` (the worse side),
    weights ``w = log(p / r)``, the posterior ``q = P[left ≻ right]`` per pair, its labels and EM iterations."""

    p: np.ndarray
    e: np.ndarray
    r: np.ndarray
    weights: np.ndarray
    posterior: np.ndarray
    labels: np.ndarray
    iterations: int


def dawid_skene(answers: Answers, known: dict[int, float] | None = None, smoothing: float = 1.0,
                iterations: int = 100, tol: float = 1e-6) -> DawidSkene:
    """Fit the one-coin Dawid–Skene model by EM (equations in the module docstring).

    ``known`` maps pair index → true ``P[left ≻ right]`` (1 or 0) of known-answer pairs, held
    fixed inside EM; ``smoothing`` is α (> 0).
    """
    if smoothing <= 0:
        raise ValueError(f"dawid-skene smoothing must be > 0 (a Laplace count), got {smoothing}")
    votes = answers.vote()
    given = np.zeros_like(votes, dtype=bool)
    given[answers.pair, answers.annotator] = True
    left, right, equal = given & (votes > 0), given & (votes < 0), given & (votes == 0)
    n = given.sum(axis=0)
    known = known or {}
    clamp_index = np.fromiter(known.keys(), dtype=np.int64, count=len(known))
    clamp_value = np.fromiter(known.values(), dtype=np.float64, count=len(known))
    q = np.nan_to_num(mean_answer(answers), nan=0.5)
    q[clamp_index] = clamp_value
    e = (smoothing + equal.sum(axis=0)) / (3 * smoothing + n)
    for step in range(1, iterations + 1):
        p = (smoothing + q @ left + (1 - q) @ right) / (3 * smoothing + n)
        r = (smoothing + (1 - q) @ left + q @ right) / (3 * smoothing + n)
        weights = np.log(p / r)
        new = 1.0 / (1.0 + np.exp(-(votes @ weights)))
        new[clamp_index] = clamp_value
        moved, q = np.abs(new - q).max(initial=0.0), new
        if moved < tol:
            break
    score = votes @ weights
    posterior = np.where(answers.answered(), 1.0 / (1.0 + np.exp(-score)), np.nan)
    return DawidSkene(p, e, r, weights, posterior, _harden(score, answers.answered()), step)


def aggregate(answers: Answers, method: str = DEFAULT_METHOD, known: dict[int, float] | None = None) -> np.ndarray:
    """Labels ``[pairs]`` (1, 0, ½; NaN where nobody answered) by ``method``: ``dawid-skene`` or ``majority``."""
    if method == "majority":
        return majority(answers)
    if method == "dawid-skene":
        return dawid_skene(answers, known).labels
    raise ValueError(f"aggregation method {method!r} is unknown; choose one of {list(METHODS)}")
