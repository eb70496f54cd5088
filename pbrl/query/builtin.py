"""Built-in strategies: uniform and ensemble disagreement (B-Pref / PEBBLE)."""

from __future__ import annotations

import numpy as np

from pbrl.learners.base import PreferenceLearner, RewardLearner
from pbrl.query.base import QueryStrategy
from pbrl.segments import CandidatePairs


class UniformStrategy(QueryStrategy):
    """Pairs drawn uniformly at random from the candidates (B-Pref ``uniform_sampling``)."""

    wants_pool = False

    def select(self, candidates: CandidatePairs, learner: PreferenceLearner, n: int, rng: np.random.Generator) -> np.ndarray:
        return rng.choice(len(candidates), size=n, replace=False)


def _require_reward_learner(name: str, learner: PreferenceLearner) -> RewardLearner:
    if not isinstance(learner, RewardLearner):
        raise TypeError(f"query strategy {name!r} needs a reward learner with pair_probabilities(); got {type(learner).__name__}")
    return learner


class DisagreementStrategy(QueryStrategy):
    """The pairs whose preference the ensemble disagrees on most (B-Pref ``disagreement_sampling``).

    ``score_i = std_e P_e[left_i ≻ right_i]`` over ensemble members; the top-``n`` are asked.
    """

    def select(self, candidates: CandidatePairs, learner: PreferenceLearner, n: int, rng: np.random.Generator) -> np.ndarray:
        probabilities = _require_reward_learner("disagreement", learner).pair_probabilities(candidates.left, candidates.right)
        return np.argsort(-probabilities.std(axis=0), kind="stable")[:n]
