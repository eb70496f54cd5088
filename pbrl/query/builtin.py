"""Built-in strategies that score pairs one by one: uniform, disagreement, entropy, predictive entropy, BALD."""

from __future__ import annotations

import numpy as np

from pbrl.learners.base import PreferenceLearner, RewardLearner
from pbrl.query import scores
from pbrl.query.base import QueryContext, QueryStrategy
from pbrl.segments import CandidatePairs


class UniformStrategy(QueryStrategy):
    """Pairs drawn uniformly at random from the candidates (B-Pref ``uniform_sampling``)."""

    wants_pool = False

    def select(
        self, candidates: CandidatePairs, learner: PreferenceLearner, n: int, rng: np.random.Generator,
        context: QueryContext | None = None,
    ) -> np.ndarray:
        return rng.choice(len(candidates), size=n, replace=False)


def require_reward_learner(name: str, learner: PreferenceLearner) -> RewardLearner:
    if not isinstance(learner, RewardLearner):
        raise TypeError(
            f"query strategy {name!r} needs a reward learner with pair_probabilities() (e.g. the BT ensemble); "
            f"got {type(learner).__name__}. Use query.strategy=uniform or qpa with reward-free learners."
        )
    return learner


def member_probabilities(name: str, candidates: CandidatePairs, learner: PreferenceLearner) -> np.ndarray:
    """``P_e[left_i ≻ right_i]`` for every member and candidate, ``[E, B]``."""
    return require_reward_learner(name, learner).pair_probabilities(candidates.left, candidates.right)


class DisagreementStrategy(QueryStrategy):
    """The pairs whose preference the ensemble disagrees on most (B-Pref ``disagreement_sampling``, PEBBLE).

    From a uniform pool of ``n × pool_multiplier`` pairs, ask the top ``n`` by

        score_i = std_e P_e[σ¹_i ≻ σ²_i],   P_e = σ(R̂_e(σ¹) − R̂_e(σ²)).
    """

    def select(
        self, candidates: CandidatePairs, learner: PreferenceLearner, n: int, rng: np.random.Generator,
        context: QueryContext | None = None,
    ) -> np.ndarray:
        return scores.top_n(scores.disagreement(member_probabilities("disagreement", candidates, learner)), n)


class EntropyStrategy(QueryStrategy):
    """The pairs whose members are, on average, least sure of the answer (B-Pref ``entropy_sampling``).

    From a uniform pool of ``n × pool_multiplier`` pairs, ask the top ``n`` by the members'
    mean entropy, exactly as B-Pref's ``reward_model.py`` ``get_entropy``:

        score_i = (1/E) Σ_e H(P_e[σ¹_i ≻ σ²_i]),   H(p) = −p log p − (1 − p) log(1 − p),

    i.e. the pairs each member predicts closest to ½. Members that confidently contradict
    each other (0.01 vs 0.99) score low here; ``predictive-entropy`` and ``bald`` count them.
    """

    name = "entropy"

    def select(
        self, candidates: CandidatePairs, learner: PreferenceLearner, n: int, rng: np.random.Generator,
        context: QueryContext | None = None,
    ) -> np.ndarray:
        return scores.top_n(scores.expected_entropy(member_probabilities(self.name, candidates, learner)), n)


class PredictiveEntropyStrategy(QueryStrategy):
    """The pairs whose ensemble-mean preference is most uncertain: the entropy of the predictive distribution.

    From a uniform pool of ``n × pool_multiplier`` pairs, ask the top ``n`` by

        score_i = H[p̄_i],   p̄_i = (1/E) Σ_e P_e[σ¹_i ≻ σ²_i].

    Why it exists beside ``entropy``: ``H[p̄]`` is the textbook max-entropy acquisition on a
    Bayesian (ensemble) model — the total uncertainty, expected entropy plus BALD's
    disagreement term — whereas B-Pref's code averages the members' entropies and so
    ignores pairs the members contradict each other on. The two coincide for E = 1.
    """

    name = "predictive-entropy"

    def select(
        self, candidates: CandidatePairs, learner: PreferenceLearner, n: int, rng: np.random.Generator,
        context: QueryContext | None = None,
    ) -> np.ndarray:
        return scores.top_n(scores.predictive_entropy(member_probabilities(self.name, candidates, learner)), n)


class BALDStrategy(QueryStrategy):
    """Expected information gain about the reward model (BALD; Houlsby et al. 2011, as in Bıyık & Sadigh's active preference queries).

    From a uniform pool of ``n × pool_multiplier`` pairs, ask the top ``n`` by the mutual
    information between the teacher's answer y and the reward parameters θ, estimated with
    the ensemble members as posterior samples:

        I(y; θ) = H[E_θ P_θ(y)] − E_θ H[P_θ(y)] = H[p̄] − (1/E) Σ_e H(P_e).

    Unlike entropy, BALD ignores pairs every member finds equally hard (H[p̄] high but
    explained by the members' own uncertainty) and asks where confident members contradict
    each other. With a single-member "ensemble" every score is 0 (ties → pool order).
    """

    def select(
        self, candidates: CandidatePairs, learner: PreferenceLearner, n: int, rng: np.random.Generator,
        context: QueryContext | None = None,
    ) -> np.ndarray:
        return scores.top_n(scores.bald(member_probabilities("bald", candidates, learner)), n)
