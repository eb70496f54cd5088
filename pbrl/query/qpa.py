"""QPA: Query-Policy Alignment (Hu, Li, Zhan, Jia & Zhang, ICLR 2024; code: huxiao09/QPA).

*Query-policy misalignment*: queries chosen to improve the reward model everywhere
(disagreement, entropy, k-center) mostly compare behaviour the current policy no longer
visits, so the labels do little for the policy being trained. QPA fixes it from both sides:

1. **Policy-aligned query selection** (this strategy): candidates are drawn uniformly from
   a small near-on-policy buffer ``D^π`` — the last ``N`` episodes (QPA's
   ``max_reward_buffer_size``: 10 on DMC, 30 for drawer-open and door-unlock, 60 for
   door-open; ``run_QPA.sh``) — so the teacher judges what the current policy does.
   Here: ``query.qpa_episodes = N``; the loop draws candidates from the last
   :func:`qpa_window` ``= N × episode_length`` env steps (per env), and
   :meth:`QPAStrategy.select` keeps only candidates inside that window (should a pool
   contain older ones), uniformly at random. QPA's ``get_queries`` takes the last N
   *complete* episodes (the running one excluded); the step window holds the same number
   of steps and differs by at most the running episode's part.
2. **Hybrid experience replay** (SAC side, ``agents/replay.py``): while labels are still
   being asked, each SAC batch of ``B`` takes ``int(ω·B)`` transitions uniformly from the
   most recent :func:`hybrid_replay_window` rows — the *same* ``N × episode_length`` as
   the query window (QPA ``agent/sac.py`` ``update_onpolicy_sample`` →
   ``replay_buffer.py`` ``sample_onpolicy``: ``randint(idx − size·max_episode_len, idx)``,
   ``size = min(N, completed episodes)``) — and the rest uniformly from the whole buffer
   (ω = ``her_ratio`` = 0.5). Once the feedback budget is spent QPA returns to uniform
   replay (``train_QPA.py``: ``if total_feedback < max_feedback: update_onpolicy_sample
   … else: update``): :func:`hybrid_replay_fraction`.
3. **Data augmentation for reward learning** (learner side): every labeled pair is
   seen as 20 random temporal crops — :func:`pbrl.augment.crop_masks` /
   :func:`pbrl.augment.crop_returns`.
"""

from __future__ import annotations

import numpy as np

from pbrl.learners.base import PreferenceLearner
from pbrl.query.base import QueryConfig, QueryContext, QueryStrategy
from pbrl.segments import CandidatePairs


def qpa_window(config: QueryConfig, episode_length: int | None) -> int | None:
    """Env steps (per env) that count as policy-aligned: ``query.window`` if set, else ``qpa_episodes × episode_length``."""
    if config.window is not None:
        return config.window
    return None if episode_length is None else config.qpa_episodes * int(episode_length)


def hybrid_replay_window(config: QueryConfig, episode_length: int) -> int:
    """Rows (per env) QPA's hybrid replay draws its recent share from: the query window, ``N × episode_length``.

    QPA uses one ``N`` for both (``max_reward_buffer_size`` in ``get_queries`` and in
    ``sample_onpolicy``), e.g. 10 × 1000 = 10,000 rows on DMC walker, 60 × 500 = 30,000
    on MetaWorld door-open.
    """
    return config.window if config.window is not None else config.qpa_episodes * int(episode_length)


def hybrid_replay_fraction(fraction: float, asked: int, budget: int) -> float:
    """QPA's share ω of recent rows in a SAC batch: ``ω`` while ``asked < budget`` queries, then 0 (uniform replay).

    ``asked`` counts queries put to the teacher, skipped ones included (QPA's ``total_feedback``).
    """
    return float(fraction) if asked < budget else 0.0


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
