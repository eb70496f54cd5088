"""How much annotators agree, from the labels in a preference store.

Only queries answered (not skipped) by at least two annotators count. Answers are the
three categories left / right / equal; a query with answers ``n_ij`` (``n_i`` in all):

* **pairwise agreement** — of all ordered pairs of different annotators on the same
  query, the fraction that gave the same answer: ``Σ_i Σ_j n_ij(n_ij−1) / Σ_i n_i(n_i−1)``;
* **Fleiss' κ** — the same agreement corrected for chance, ``(P̄ − P_e) / (1 − P_e)`` with
  ``P̄`` the mean per-query agreement and ``P_e = Σ_j p_j²`` from the answers' overall
  shares (NaN when every answer is the same category, where chance explains everything);
* **per annotator** — labels given, skips, and how often the others on the same
  queries gave the same answer.

:func:`truth_agreement` asks a different question of each annotator, one that only
simulated segments can answer: how often their answer names the segment with the higher
true return ``Σ_t r_t`` (each segment's stored true rewards; pairs of equal true return
left out, and an "equal" answer counted as not naming it). For B-Pref's oracle it is 1;
its mistake teacher's is ~0.9 by construction; a myopic, skip or equal teacher's shows
what its rule did to the labels a run actually learned from.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import numpy as np
from sqlalchemy import select

from pbrl.database import labels_table, queries_table
from pbrl.store import PreferenceStore


@dataclass(frozen=True)
class AnnotatorAgreement:
    labels: int
    skips: int
    agreement: float
    """Fraction of other annotators' answers on shared queries equal to this annotator's (NaN: none shared)."""


@dataclass(frozen=True)
class Agreement:
    queries: int
    """Queries answered by two annotators or more."""
    pairwise: float
    kappa: float
    annotators: dict[str, AnnotatorAgreement]

    def lines(self) -> list[str]:
        """A plain-text report."""
        out = [f"queries with ≥2 answers: {self.queries}   pairwise agreement: {self.pairwise:.3f}   "
               f"Fleiss' kappa: {self.kappa:.3f}"]
        for name, stats in sorted(self.annotators.items()):
            out.append(f"  {name}: {stats.labels} labels, {stats.skips} skips, "
                       f"agrees with others {stats.agreement:.3f}")
        return out


def agreement(store: PreferenceStore) -> Agreement:
    """Agreement statistics over every label in ``store``."""
    c = labels_table.c
    answers: dict[int, dict[str, float]] = defaultdict(dict)
    skips: dict[str, int] = defaultdict(int)
    for query_id, annotator, label, skipped in store.read(select(c.query_id, c.annotator, c.label, c.skipped)):
        if skipped:
            skips[annotator] += 1
        else:
            answers[int(query_id)][annotator] = float(label)
    shared = {q: given for q, given in answers.items() if len(given) >= 2}
    counts = np.array([[sum(v == category for v in given.values()) for category in (0.0, 0.5, 1.0)]
                       for given in shared.values()], dtype=np.float64).reshape(-1, 3)
    totals = counts.sum(axis=1)
    pair_count = (totals * (totals - 1)).sum()
    pairwise = float((counts * (counts - 1)).sum() / pair_count) if pair_count else float("nan")
    kappa = float("nan")
    if len(counts):
        per_query = (counts * (counts - 1)).sum(axis=1) / (totals * (totals - 1))
        chance = float(((counts.sum(axis=0) / totals.sum()) ** 2).sum())
        kappa = float((per_query.mean() - chance) / (1 - chance)) if chance < 1 else float("nan")

    agreeing: dict[str, list[float]] = defaultdict(list)
    for given in shared.values():
        for name, value in given.items():
            agreeing[name] += [float(other == value) for who, other in given.items() if who != name]
    names = set(skips) | {name for given in answers.values() for name in given}
    per_annotator = {
        name: AnnotatorAgreement(
            labels=sum(name in given for given in answers.values()), skips=skips[name],
            agreement=float(np.mean(agreeing[name])) if agreeing[name] else float("nan"),
        )
        for name in names
    }
    return Agreement(len(shared), pairwise, kappa, per_annotator)


@dataclass(frozen=True)
class TruthAgreement:
    labels: int
    """Answered (not skipped) labels on pairs whose true returns differ."""
    equal: int
    """Of those, answers of ½ ("equal")."""
    agreement: float
    """Fraction of those labels that prefer the segment with the higher true return (NaN: none)."""

    def line(self, name: str) -> str:
        return (f"  {name}: {self.labels} labels on pairs of different true return, {self.equal} equal, "
                f"agree with the true return {self.agreement:.3f}")


def truth_agreement(store: PreferenceStore) -> dict[str, TruthAgreement]:
    """Per annotator, how often a label prefers the segment of higher true (undiscounted) return."""
    labels, queries = labels_table.c, queries_table.c
    rows = store.read(
        select(labels.annotator, labels.label, queries.left_id, queries.right_id)
        .join_from(labels_table, queries_table, queries.id == labels.query_id).where(labels.skipped == 0)
    )
    if not rows:
        return {}
    annotators, answers, left, right = (np.asarray(column) for column in zip(*rows))
    ids = np.unique(np.concatenate([left, right]))
    returns = dict(zip(ids.tolist(), store.segment_batch(ids).truth.returns.tolist()))
    true_left = np.array([returns[int(i)] for i in left]) - np.array([returns[int(i)] for i in right])
    answers = answers.astype(np.float64)
    out = {}
    for name in sorted(set(annotators.tolist())):
        mask = (annotators == name) & (true_left != 0)
        agree = np.where(true_left[mask] > 0, answers[mask] == 1.0, answers[mask] == 0.0)
        out[name] = TruthAgreement(int(mask.sum()), int((answers[mask] == 0.5).sum()),
                                   float(agree.mean()) if mask.any() else float("nan"))
    return out
