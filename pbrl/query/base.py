"""Query strategies: which candidate pairs to ask the teacher about.

A strategy receives the candidate pairs (learner-visible arrays only), the learner (for
per-member pair probabilities and segment features), the number of queries wanted and a
random generator, and returns the indices of the chosen candidates. Nothing else of the
loop leaks into it, so strategies are easy to write, test and swap.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np

from pbrl.learners.base import PreferenceLearner
from pbrl.segments import CandidatePairs


class InvalidSelectionError(ValueError):
    """A strategy returned indices the loop cannot use."""


@dataclass(frozen=True)
class QueryConfig:
    """How candidate pairs are drawn and chosen each round."""

    strategy: str = "disagreement"
    """Registered strategy name (built-ins: uniform, disagreement; plug-ins via the `pbrl.query_strategies` entry point)."""
    pool_multiplier: int = 10
    """Candidate pool = pool_multiplier × queries per round (B-Pref large_batch)."""
    first_round_uniform: bool = True
    """Use uniform sampling for the first round, when the learner is still untrained (B-Pref)."""
    window: int | None = None
    """Only sample candidates from the last `window` env steps per env (None = whole transition log)."""

    def __post_init__(self) -> None:
        if self.pool_multiplier < 1:
            raise ValueError(f"query.pool_multiplier must be ≥ 1, got {self.pool_multiplier}")


class QueryStrategy(ABC):
    """Chooses ``n`` of the candidate pairs."""

    #: How many candidates the strategy wants per query (the loop builds a pool of n × this).
    wants_pool: bool = True

    @abstractmethod
    def select(
        self, candidates: CandidatePairs, learner: PreferenceLearner, n: int, rng: np.random.Generator
    ) -> np.ndarray:
        """Return ``n`` distinct indices into ``candidates``."""


def validate_selection(name: str, indices: np.ndarray, pool_size: int, n: int) -> np.ndarray:
    """Check a strategy's answer and say exactly what is wrong with it."""
    indices = np.asarray(indices)
    problem = None
    if indices.ndim != 1 or not np.issubdtype(indices.dtype, np.integer):
        problem = f"returned an array of shape {indices.shape} and dtype {indices.dtype}, expected a 1-d integer array"
    elif len(indices) != n:
        problem = f"returned {len(indices)} indices, expected {n}"
    elif len(indices) and (indices.min() < 0 or indices.max() >= pool_size):
        problem = f"returned indices outside [0, {pool_size}) (min {indices.min()}, max {indices.max()})"
    elif len(np.unique(indices)) != len(indices):
        problem = "returned duplicate indices"
    if problem:
        raise InvalidSelectionError(f"query strategy {name!r} {problem}")
    return indices.astype(np.int64)
