"""Two query strategies written the way any third party would write one.

* ``stochastic-disagreement`` — a class. Top-n disagreement asks n near-copies of the same
  question when a region of the pool is uncertain; sampling n pairs *without replacement*
  with probability ∝ score^β (power acquisition, Kirsch et al. 2023, "Stochastic Batch
  Acquisition") keeps the preference for disputed pairs but spreads the batch. Sampling
  uses the Gumbel-top-k trick: the n largest ``β·log(score_i) + G_i``, ``G_i ~ Gumbel(0, 1)``,
  are an exact sample without replacement from ``p_i ∝ score_i^β``.
* ``smallest-margin`` — a plain function turned into a strategy with
  :func:`pbrl.query.function_strategy`: the pairs whose ensemble-mean predicted returns are
  closest, ``|mean_e R̂_e(σ¹) − mean_e R̂_e(σ²)|`` smallest (margin sampling).
"""

from __future__ import annotations

import numpy as np

from pbrl.query import QueryContext, QueryStrategy, function_strategy


class StochasticDisagreement(QueryStrategy):
    """Sample n pairs without replacement with probability ∝ (std_e P_e[σ¹ ≻ σ²])^β."""

    wants_pool = True  # rank a pool of n × query.pool_multiplier candidates

    def __init__(self, beta: float = 1.0) -> None:
        self.beta = beta

    def select(self, candidates, learner, n, rng, context: QueryContext | None = None) -> np.ndarray:
        probs = learner.pair_probabilities(candidates.left, candidates.right)  # [E, B]
        score = probs.std(axis=0)
        keys = self.beta * np.log(score + 1e-12) + rng.gumbel(size=len(score))
        return np.argsort(-keys)[:n]


@function_strategy
def smallest_margin(candidates, learner, n, rng):
    """The n pairs whose ensemble-mean predicted segment returns are closest."""
    left = learner.member_segment_returns(candidates.left).mean(dim=0)
    right = learner.member_segment_returns(candidates.right).mean(dim=0)
    return np.argsort((left - right).abs().cpu().numpy(), kind="stable")[:n]
