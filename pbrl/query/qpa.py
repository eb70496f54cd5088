"""QPA: Query-Policy Alignment (Hu, Li, Zhan, Jia & Zhang, ICLR 2024).

*Query-policy misalignment*: queries chosen to improve the reward model everywhere
(disagreement, entropy, k-center) mostly compare behaviour the current policy no longer
visits, so the labels do little for the policy being trained. QPA fixes it from both sides:

1. **Policy-aligned query selection** (this strategy): candidates are drawn uniformly from
   a small near-on-policy buffer ``D^π`` — the last ``N`` episodes (QPA's
   ``max_reward_buffer_size``; ``N = 10``, 30 for door-unlock, 60 for door-open) — so the
   teacher judges what the current policy actually does.
   Here: ``query.qpa_episodes = N``; the loop draws candidates from the last
   ``N × episode_length`` env steps (per env), and :meth:`QPAStrategy.select` keeps only
   candidates inside that window (should a pool contain older ones), uniformly at random.
2. **Hybrid experience replay** (SAC side, ``agents/replay.py``): each SAC batch takes
   ``ω · B`` transitions from the most recent ones (QPA: ω = 0.5, the last ``N`` episodes)
   and ``(1 − ω) · B`` uniformly from the whole buffer, so value learning concentrates on
   the region the reward model was just taught: ``sac.recent_fraction`` /
   ``sac.recent_window``, switched on automatically when ``query.strategy = qpa``.

QPA's third ingredient, reward-learning data augmentation (τ = 20 random sub-snippets of
35–45 steps per labeled pair), belongs to the preference learner, not to query selection.
"""

from __future__ import annotations

import numpy as np

from pbrl.learners.base import PreferenceLearner
from pbrl.query.base import QueryConfig, QueryContext, QueryStrategy
from pbrl.segments import CandidatePairs


def qpa_window(config: QueryConfig, episode_length: int | None) -> int | None:
    """Env steps that count as policy-aligned: ``query.window`` if set, else ``qpa_episodes × episode_length``."""
    if config.window is not None:
        return config.window
    return None if episode_length is None else config.qpa_episodes * int(episode_length)


class QPAStrategy(QueryStrategy):
    """Policy-aligned query selection: pairs drawn uniformly from the last N episodes only (QPA).

    A candidate's age is ``recency`` = env step at which its older segment starts; it is
    policy-aligned when ``recency ≥ now − N · episode_length`` (``now`` = the round's env
    step, or the freshest candidate's when unknown). ``n`` of those are drawn uniformly; if
    fewer than ``n`` qualify, the freshest others fill up.
    """

    wants_pool = False

    def candidate_window(self, config: QueryConfig, episode_length: int) -> int | None:
        return qpa_window(config, episode_length)

    def select(
        self, candidates: CandidatePairs, learner: PreferenceLearner, n: int, rng: np.random.Generator,
        context: QueryContext | None = None,
    ) -> np.ndarray:
        context = context or QueryContext()
        recency = np.asarray(candidates.recency)
        window = qpa_window(context.config, context.episode_length)
        if window is None:
            recent = np.arange(len(candidates))
        else:
            now = context.step if context.step is not None else int(recency.max())
            recent = np.flatnonzero(recency >= now - window)
        if len(recent) >= n:
            return rng.choice(recent, size=n, replace=False)
        others = np.setdiff1d(np.arange(len(candidates)), recent)
        freshest = others[np.argsort(-recency[others], kind="stable")[: n - len(recent)]]
        return np.concatenate([recent, freshest])
