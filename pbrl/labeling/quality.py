"""Quality control of annotators: known-answer pairs, agreement with the others, answer time.

**Known-answer pairs** are pairs whose better side is clear from the true reward — the
segments' true returns differ by at least ``margin`` standard deviations of the segment
returns — mixed among the pairs served from a dataset (:mod:`pbrl.labeling.offline`).
Nothing tells them apart on the page: they are queued, assigned, swapped and answered like
every other pair; only the store's ``queries.teacher`` column (never sent to a browser)
says :data:`KNOWN_ANSWER`. Their true answer is recomputed from the true rewards stored
with the segments, so it is never written anywhere an annotator could read it.

Per annotator, :func:`quality` reports:

* **known-answer accuracy** — the fraction of known-answer pairs answered on the true
  side ("equal" counts ½; skips do not count);
* **agreement** — how often the others on the same pairs gave the same answer
  (:func:`pbrl.labeling.agreement.agreement`);
* **median answer time** — answered-at minus when the pair was handed out.

An annotator with at least ``min_known`` known answers and an accuracy below
``min_accuracy`` is **flagged**; ``pbrl labels --write … --drop-flagged`` leaves their labels
out of the dataset (:mod:`pbrl.datasets.human_labels`).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import numpy as np
from sqlalchemy import select

from pbrl.database import queries_table
from pbrl.labeling.agreement import agreement
from pbrl.labeling.exchange import label_records
from pbrl.store import PreferenceStore

KNOWN_ANSWER = "human:known-answer"
"""``queries.teacher`` of a known-answer pair (people's pairs say ``human``)."""


def clear_pairs(returns: np.ndarray, left: np.ndarray, right: np.ndarray, margin: float) -> np.ndarray:
    """``[P]`` mask of pairs whose true-return order is clear: ``|R_left − R_right| ≥ margin · std(returns)``
    (``returns``: the true return of every segment; a dataset of equal returns has no clear pair)."""
    spread = float(np.std(returns))
    return (np.abs(returns[left] - returns[right]) >= margin * spread) & (spread > 0)


def known_answers(store: PreferenceStore) -> dict[int, float]:
    """Query id → true ``P[left ≻ right]`` (1 or 0) of every known-answer pair in ``store``."""
    q = queries_table.c
    rows = store.read(select(q.id, q.left_id, q.right_id).where(q.teacher == KNOWN_ANSWER).order_by(q.id))
    if not rows:
        return {}
    ids, left, right = (np.array(column, dtype=np.int64) for column in zip(*rows))
    returns = lambda segments: store.segment_batch(segments).truth.returns  # noqa: E731
    return {int(i): float(better) for i, better in zip(ids, returns(left) > returns(right))}


@dataclass(frozen=True)
class AnnotatorQuality:
    answers: int
    """Answers given (skips not counted)."""
    skips: int
    known: int
    """Known-answer pairs answered."""
    known_accuracy: float
    """Fraction answered on the true side ("equal" ½; NaN without known answers)."""
    agreement: float
    """Fraction of the others' answers on shared pairs equal to this annotator's (NaN: none shared)."""
    median_seconds: float
    """Median time from handing out a pair to the answer (NaN if the times are not recorded)."""
    flagged: bool


@dataclass(frozen=True)
class Quality:
    annotators: dict[str, AnnotatorQuality]
    min_accuracy: float
    min_known: int

    @property
    def flagged(self) -> list[str]:
        """Annotators whose known-answer accuracy is below ``min_accuracy`` (on ≥ ``min_known`` known answers)."""
        return sorted(name for name, stats in self.annotators.items() if stats.flagged)

    def lines(self) -> list[str]:
        """A plain-text report, one line per annotator."""
        out = [f"quality control (flagged: known-answer accuracy < {self.min_accuracy:.2f} on ≥ {self.min_known} "
               "known-answer pairs)"]
        for name, s in sorted(self.annotators.items()):
            known = f"{s.known_accuracy:.3f} on {s.known}" if s.known else "— (no known-answer pairs answered)"
            out.append(f"  {name}: {s.answers} answers, {s.skips} skips, known-answer accuracy {known}, agrees with "
                       f"others {s.agreement:.3f}, median answer time {s.median_seconds:.1f} s"
                       + ("   FLAGGED" if s.flagged else ""))
        return out


def quality(store: PreferenceStore, min_accuracy: float = 0.75, min_known: int = 5) -> Quality:
    """Per-annotator quality figures over every label in ``store`` (see the module docstring)."""
    if not 0.0 <= min_accuracy <= 1.0:
        raise ValueError(f"min_accuracy (--min-accuracy) must be in [0, 1], got {min_accuracy}")
    if min_known < 1:
        raise ValueError(f"min_known (--min-known) must be ≥ 1, got {min_known}")
    truth = known_answers(store)
    agreeing = agreement(store).annotators
    answers, skips = defaultdict(int), defaultdict(int)
    correct: dict[str, list[float]] = defaultdict(list)
    seconds: dict[str, list[float]] = defaultdict(list)
    for record in label_records(store):
        name = record["annotator"]
        if record["shown_at"] is not None:
            seconds[name].append(record["answered_at"] - record["shown_at"])
        if record["skipped"]:
            skips[name] += 1
            continue
        answers[name] += 1
        if record["query_id"] in truth:
            correct[name].append(1.0 - abs(record["label"] - truth[record["query_id"]]))
    report = {}
    for name in sorted(set(answers) | set(skips)):
        known = len(correct[name])
        accuracy = float(np.mean(correct[name])) if known else float("nan")
        report[name] = AnnotatorQuality(
            answers=answers[name], skips=skips[name], known=known, known_accuracy=accuracy,
            agreement=agreeing[name].agreement if name in agreeing else float("nan"),
            median_seconds=float(np.median(seconds[name])) if seconds[name] else float("nan"),
            flagged=known >= min_known and accuracy < min_accuracy,
        )
    return Quality(report, min_accuracy, min_known)
