"""Query strategies on crafted candidate pools whose right answer is known by hand."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from pbrl.learners import BTEnsemble, BTEnsembleConfig
from pbrl.learners.base import RewardLearner
from pbrl.query import (
    InvalidSelectionError,
    QueryConfig,
    QueryContext,
    QueryStrategy,
    available,
    function_strategy,
    make_strategy,
    register,
    select_queries,
    validate_selection,
)
from pbrl.query import registry, scores
from pbrl.query.coverage import kcenter_greedy
from pbrl.query.qpa import hybrid_replay_fraction, hybrid_replay_window
from pbrl.segments import CandidatePairs, PreferenceDataset, Segments

BUILTINS = ["uniform", "disagreement", "entropy", "predictive-entropy", "bald", "kcenter", "kcenter-disagreement",
            "kcenter-entropy", "qpa"]


class FixedLearner(RewardLearner):
    """A stand-in reward learner whose per-member pair probabilities are given, ``[E, B]``."""

    device = torch.device("cpu")

    def __init__(self, probs) -> None:
        self.probs = np.asarray(probs, dtype=np.float64)

    def pair_probabilities(self, left: Segments, right: Segments) -> np.ndarray:
        assert len(left) == self.probs.shape[1], "strategies score the whole pool at once"
        return self.probs

    def reward_tensor(self, obs, actions, next_obs):
        raise NotImplementedError

    def member_segment_returns(self, segments):
        raise NotImplementedError

    def update(self, data):
        return {}

    def state_dict(self):
        return {}

    def load_state_dict(self, state) -> None:
        pass


def segments_at(points) -> Segments:
    """One-step segments whose observation is the given point (``[B, D]``)."""
    obs = np.asarray(points, dtype=np.float32)[:, None, :]
    return Segments(obs, np.zeros((len(obs), 1, 1), np.float32), obs.copy())


def pool(left_points, right_points=None, recency=None) -> CandidatePairs:
    left = np.asarray(left_points, dtype=np.float32)
    right = np.zeros_like(left) if right_points is None else np.asarray(right_points, dtype=np.float32)
    recency = np.zeros(len(left), np.int64) if recency is None else np.asarray(recency)
    return CandidatePairs(segments_at(left), segments_at(right), recency)


def pick(name: str, candidates: CandidatePairs, learner, n: int, context: QueryContext | None = None, seed: int = 0):
    return select_queries(name, make_strategy(name), candidates, learner, n, np.random.default_rng(seed), context)


# ----------------------------------------------------------------------------- uncertainty
def test_disagreement_picks_the_pairs_the_members_disagree_on():
    probs = [[0.5, 0.1, 0.9, 0.7, 0.3, 0.5],
             [0.5, 0.9, 0.9, 0.7, 0.5, 0.6],
             [0.5, 0.5, 0.9, 0.7, 0.1, 0.4]]  # pair 1 splits widely, pair 4 less, pair 5 a little
    candidates = pool(np.zeros((6, 2)))
    assert list(pick("disagreement", candidates, FixedLearner(probs), 2)) == [1, 4]
    assert list(pick("disagreement", candidates, FixedLearner(probs), 3)) == [1, 4, 5]


def test_entropy_picks_the_pairs_predicted_nearest_one_half():
    means = np.array([0.97, 0.52, 0.2, 0.45, 0.01, 0.6, 0.88])
    probs = np.stack([means, means])  # members agree: only closeness to ½ matters
    chosen = pick("entropy", pool(np.zeros((7, 2))), FixedLearner(probs), 3)
    assert list(chosen) == [1, 3, 5]  # |p − ½| = 0.02, 0.05, 0.1
    np.testing.assert_allclose(scores.predictive_entropy(probs)[1], -(0.52 * np.log(0.52) + 0.48 * np.log(0.48)))


def test_bald_matches_the_formula_and_prefers_confident_contradictions():
    probs = np.array([[0.5, 0.1, 0.5, 0.01, 0.9],
                      [0.5, 0.9, 0.7, 0.21, 0.9]])
    h = lambda p: -(p * np.log(p) + (1 - p) * np.log(1 - p))  # noqa: E731
    expected = np.array([0.0, np.log(2) - h(0.1), h(0.6) - (h(0.5) + h(0.7)) / 2, h(0.11) - (h(0.01) + h(0.21)) / 2, 0.0])
    np.testing.assert_allclose(scores.bald(probs), expected, atol=1e-9)
    assert expected[1] == pytest.approx(0.3681, abs=1e-4)
    # pairs 2 and 3 are equally disputed by std (0.1), but only pair 3's members are each confident
    assert scores.disagreement(probs)[2] == pytest.approx(scores.disagreement(probs)[3])
    assert list(pick("bald", pool(np.zeros((5, 2))), FixedLearner(probs), 2)) == [1, 3]
    # entropy cannot tell "all members unsure" (pair 0) from "members contradict" (pair 1): BALD can
    assert scores.predictive_entropy(probs)[0] == pytest.approx(scores.predictive_entropy(probs)[1])
    assert scores.bald(probs)[0] == 0.0


# ----------------------------------------------------------------------------- coverage
def test_kcenter_greedy_picks_the_ends_then_the_middle_of_a_line():
    line = np.arange(100, dtype=np.float32)[:, None]
    chosen = kcenter_greedy(line, 3, projection=None)
    assert set(chosen[:2]) == {0, 99} and chosen[2] in (49, 50)


def test_kcenter_takes_one_pair_per_cluster_and_avoids_already_labeled_regions():
    rng = np.random.default_rng(0)
    centres = np.array([[0.0, 0.0], [100.0, 0.0], [0.0, 100.0], [100.0, 100.0]])
    points = np.concatenate([c + rng.normal(scale=1.0, size=(10, 2)) for c in centres])  # cluster k = rows 10k..10k+9
    candidates = pool(points)
    learner = FixedLearner(np.full((2, 40), 0.5))
    config = QueryConfig(kcenter_projection=None)
    chosen = pick("kcenter", candidates, learner, 4, QueryContext(config))
    assert sorted(chosen // 10) == [0, 1, 2, 3]
    # pairs near clusters 0 and 3 are already labeled: the two new queries go to clusters 1 and 2
    labeled = PreferenceDataset(segments_at(centres[[0, 3]]), segments_at(np.zeros((2, 2))), np.array([1.0, 0.0]))
    chosen = pick("kcenter", candidates, learner, 2, QueryContext(config, labeled=lambda: labeled))
    assert sorted(chosen // 10) == [1, 2]


def test_kcenter_with_random_projection_still_separates_high_dimensional_clusters():
    rng = np.random.default_rng(1)
    centres = rng.normal(scale=10.0, size=(5, 600))
    points = np.concatenate([c + rng.normal(scale=0.5, size=(20, 600)) for c in centres])
    chosen = kcenter_greedy(points, 5, projection=32, seed=3)
    assert sorted(chosen // 20) == [0, 1, 2, 3, 4]


@pytest.mark.parametrize("name, score", [("kcenter-disagreement", "disagreement"), ("kcenter-entropy", "entropy")])
def test_kcenter_on_a_shortlist_only_considers_the_most_uncertain_half(name, score):
    rng = np.random.default_rng(2)
    points = rng.uniform(-50, 50, size=(40, 2))
    uncertain = np.zeros(40, bool)
    uncertain[rng.choice(40, 20, replace=False)] = True
    if score == "disagreement":  # members split on the uncertain pairs, agree on the rest
        probs = np.stack([np.where(uncertain, 0.2, 0.7), np.where(uncertain, 0.8, 0.7)])
    else:  # members agree; the uncertain pairs sit near ½
        mean = np.where(uncertain, 0.5 + rng.uniform(-0.05, 0.05, 40), 0.95)
        probs = np.stack([mean, mean])
    learner = FixedLearner(probs)
    config = QueryConfig(kcenter_projection=None, shortlist_fraction=0.5)
    chosen = pick(name, pool(points), learner, 5, QueryContext(config))
    assert uncertain[chosen].all()
    plain = pick("kcenter", pool(points), learner, 5, QueryContext(config))
    assert not uncertain[plain].all()  # k-center alone ignores the scores (this pool makes it stray)
    # within the short-list the answer is the k-center one
    keep = np.flatnonzero(uncertain)
    np.testing.assert_array_equal(np.sort(chosen), np.sort(keep[kcenter_greedy(points[keep], 5, projection=None)]))


def test_kcenter_selection_is_fast_exact_on_bprefs_pools_and_projected_on_ten_thousand():
    rng = np.random.default_rng(0)
    obs = rng.normal(size=(10_000, 50, 17)).astype(np.float32)  # HalfCheetah-sized 50-step segments
    segs = Segments(obs, np.zeros((10_000, 50, 1), np.float32), obs)
    small = np.arange(1_000)  # B-Pref's pools: large_batch 10 × 50–128 queries
    timed = {}
    for name, candidates, n, config in [
        ("exact, 10³", CandidatePairs(segs[small], segs[small], np.zeros(1_000, np.int64)), 100, QueryConfig()),
        ("projected, 10⁴", CandidatePairs(segs, segs, np.zeros(10_000, np.int64)), 1_000, QueryConfig(kcenter_projection=128)),
    ]:
        started = time.perf_counter()
        chosen = pick("kcenter", candidates, FixedLearner(np.full((1, len(candidates)), 0.5)), n, QueryContext(config))
        timed[name] = time.perf_counter() - started
        assert len(np.unique(chosen)) == n
    assert max(timed.values()) < 3.0, f"k-center took {timed} (target < 1 s; lenient here for busy CI)"


# ----------------------------------------------------------------------------- QPA
def test_qpa_only_picks_pairs_from_the_last_n_episodes():
    rng = np.random.default_rng(0)
    recency = rng.integers(0, 10_000, size=200)
    candidates = pool(np.zeros((200, 2)), recency=recency)
    context = QueryContext(QueryConfig(strategy="qpa", qpa_episodes=10), step=10_000, episode_length=100)
    seen = set()
    for seed in range(5):
        chosen = pick("qpa", candidates, None, 5, context, seed=seed)
        assert (recency[chosen] >= 10_000 - 10 * 100).all()
        seen.update(chosen.tolist())
    assert len(seen) > 5  # uniform within the window, not "the n freshest"
    assert make_strategy("qpa").candidate_window(QueryConfig(qpa_episodes=10), 1000) == 10_000
    assert make_strategy("qpa").candidate_window(QueryConfig(window=500), 1000) == 500
    assert make_strategy("disagreement").candidate_window(QueryConfig(), 1000) is None


def test_qpa_fills_up_with_the_freshest_when_the_window_holds_too_few():
    recency = np.array([10, 9_950, 500, 9_000, 9_990, 7_000])
    context = QueryContext(QueryConfig(qpa_episodes=1), step=10_000, episode_length=100)
    chosen = pick("qpa", pool(np.zeros((6, 2)), recency=recency), None, 3, context)
    assert sorted(chosen) == [1, 3, 4]  # 1 and 4 are inside the window, 3 is the freshest other


# ----------------------------------------------------------------------------- B-Pref's code, restated
# rll-research/BPref, reward_model.py: p_hat_member / get_rank_probability (disagreement), p_hat_entropy /
# get_entropy (entropy), KCenterGreedy / compute_smallest_dist (k-center), and the ranking lines of
# disagreement_sampling, entropy_sampling, kcenter_sampling, kcenter_disagree_sampling, kcenter_entropy_sampling.
# Inputs: R̂_e(σ) = r_hat_member(x).sum(axis=1), the members' segment returns, read from a real BTEnsemble.


def bpref_logits(learner: BTEnsemble, left: Segments, right: Segments) -> torch.Tensor:
    """``r_hat = torch.cat([r_hat1, r_hat2], axis=-1)`` per member: ``[E, B, 2]``."""
    return torch.stack([learner.member_segment_returns(left), learner.member_segment_returns(right)], dim=-1)


def bpref_get_rank_probability(r_hat: torch.Tensor):
    probs = F.softmax(r_hat, dim=-1)[..., 0].numpy()  # p_hat_member, one row per member
    return np.mean(probs, axis=0), np.std(probs, axis=0)


def bpref_get_entropy(r_hat: torch.Tensor):
    ent = (F.softmax(r_hat, dim=-1) * F.log_softmax(r_hat, dim=-1)).sum(axis=-1).abs().numpy()  # p_hat_entropy
    return np.mean(ent, axis=0), np.std(ent, axis=0)


def bpref_compute_smallest_dist(obs, full_obs):
    obs, full_obs = torch.from_numpy(obs).float(), torch.from_numpy(full_obs).float()
    batch_size = 100
    total_dists = []
    for full_idx in range(len(obs) // batch_size + 1):
        full_start = full_idx * batch_size
        if full_start < len(obs):
            full_end = (full_idx + 1) * batch_size
            dists = []
            for idx in range(len(full_obs) // batch_size + 1):
                start = idx * batch_size
                if start < len(full_obs):
                    end = (idx + 1) * batch_size
                    dists.append(torch.norm(obs[full_start:full_end, None, :] - full_obs[None, start:end, :], dim=-1, p=2))
            total_dists.append(torch.min(torch.cat(dists, dim=1), dim=1).values)
    return torch.cat(total_dists).unsqueeze(1)


def bpref_kcenter_greedy(obs, full_obs, num_new_sample):
    selected_index = []
    current_index = list(range(obs.shape[0]))
    new_obs, new_full_obs = obs, full_obs
    for count in range(num_new_sample):
        max_index = torch.argmax(bpref_compute_smallest_dist(new_obs, new_full_obs)).item()
        selected_index.append(max_index if count == 0 else current_index[max_index])
        current_index = current_index[0:max_index] + current_index[max_index + 1 :]
        new_obs = obs[current_index]
        new_full_obs = np.concatenate([full_obs, obs[selected_index]], axis=0)
    return selected_index


def bpref_pair_obs(left: Segments, right: Segments) -> np.ndarray:
    """``temp_sa``: each side's observations only (``sa_t[:, :, :ds]``), flattened, the two sides concatenated."""
    return np.concatenate([left.obs.reshape(len(left), -1), right.obs.reshape(len(right), -1)], axis=1)


def random_segments(rng: np.random.Generator, count: int, length: int = 4, obs_dim: int = 3, act_dim: int = 2) -> Segments:
    obs = rng.normal(size=(count, length, obs_dim)).astype(np.float32)
    return Segments(obs, rng.uniform(-1, 1, size=(count, length, act_dim)).astype(np.float32), obs + 0.1)


@pytest.fixture
def bpref_round():
    """A pool of 200 pairs (B-Pref: mb_size 20 × large_batch 10), 30 labeled pairs, an untrained 3-member ensemble."""
    rng = np.random.default_rng(7)
    learner = BTEnsemble(3, 2, BTEnsembleConfig(ensemble_size=3, hidden_sizes=(32, 32)), seed=3)
    candidates = CandidatePairs(random_segments(rng, 200), random_segments(rng, 200), np.zeros(200, np.int64))
    labeled = PreferenceDataset(random_segments(rng, 30), random_segments(rng, 30), rng.integers(0, 2, 30).astype(np.float64))
    return learner, candidates, labeled


def test_uniform_and_qpa_ask_every_pair_they_draw_as_bprefs_uniform_sampling(bpref_round):
    """``uniform_sampling`` (and QPA's, over its window) labels all ``mb_size`` pairs ``get_queries`` drew:
    no pool, no ranking — pbrl's loop draws n candidates and the strategy returns all of them."""
    learner, candidates, _ = bpref_round
    for name in ("uniform", "qpa"):
        strategy = make_strategy(name)
        assert strategy.wants_pool is False
        first = np.arange(20)
        drawn = CandidatePairs(candidates.left[first], candidates.right[first], candidates.recency[first])
        context = QueryContext(QueryConfig(), step=0, episode_length=50)
        assert sorted(pick(name, drawn, learner, 20, context)) == list(range(20))


def test_disagreement_picks_as_bprefs_disagreement_sampling(bpref_round):
    learner, candidates, _ = bpref_round
    _, disagree = bpref_get_rank_probability(bpref_logits(learner, candidates.left, candidates.right))
    reference = (-disagree).argsort()[:20]
    assert list(pick("disagreement", candidates, learner, 20)) == list(reference)


def test_entropy_picks_as_bprefs_entropy_sampling_and_predictive_entropy_differs(bpref_round):
    learner, candidates, _ = bpref_round
    r_hat = bpref_logits(learner, candidates.left, candidates.right)
    entropy, _ = bpref_get_entropy(r_hat)
    reference = (-entropy).argsort()[:20]
    assert list(pick("entropy", candidates, learner, 20)) == list(reference)
    # the separately named variant ranks by H[p̄], the entropy of the ensemble mean: other picks on this pool
    assert set(pick("predictive-entropy", candidates, learner, 20)) != set(reference)


def test_kcenter_picks_as_bprefs_kcenter_sampling_with_exact_distances_by_default(bpref_round):
    learner, candidates, labeled = bpref_round
    assert QueryConfig().kcenter_projection is None
    reference = bpref_kcenter_greedy(bpref_pair_obs(candidates.left, candidates.right),
                                     bpref_pair_obs(labeled.left, labeled.right), 20)
    context = QueryContext(QueryConfig(), round_index=1, labeled=labeled)
    assert list(pick("kcenter", candidates, learner, 20, context)) == reference
    # the opt-in projection is an approximation: its picks differ
    projected = pick("kcenter", candidates, learner, 20, QueryContext(QueryConfig(kcenter_projection=4), labeled=labeled))
    assert list(projected) != reference


@pytest.mark.parametrize("name", ["kcenter-disagreement", "kcenter-entropy"])
def test_kcenter_on_a_shortlist_picks_as_bprefs(bpref_round, name):
    learner, candidates, labeled = bpref_round
    r_hat = bpref_logits(learner, candidates.left, candidates.right)
    score = bpref_get_rank_probability(r_hat)[1] if name == "kcenter-disagreement" else bpref_get_entropy(r_hat)[0]
    num_init_half = int(len(candidates) * 0.5)
    top_k_index = (-score).argsort()[:num_init_half]
    shortlisted = bpref_pair_obs(candidates.left[top_k_index], candidates.right[top_k_index])
    selected = bpref_kcenter_greedy(shortlisted, bpref_pair_obs(labeled.left, labeled.right), 20)
    context = QueryContext(QueryConfig(), round_index=1, labeled=labeled)
    assert list(pick(name, candidates, learner, 20, context)) == list(top_k_index[selected])


# ----------------------------------------------------------------------------- QPA's code, restated
# huxiao09/QPA: replay_buffer.py sample_onpolicy draws randint(idx − size·max_episode_len, idx) with
# size = max_reward_buffer_size (once that many episodes are done), the same N as the query buffer of
# reward_model.py get_queries; train_QPA.py lines 258–262 replay hybrid only while total_feedback < max_feedback.


def qpa_onpolicy_rows(idx: int, size: int, max_episode_len: int) -> int:
    low, high = idx - size * max_episode_len, idx
    return high - low


@pytest.mark.parametrize("episodes, episode_length", [(10, 1000), (30, 500), (60, 500)])  # run_QPA.sh: DMC, drawer/unlock, door-open
def test_hybrid_replay_window_is_qpas_onpolicy_window_and_the_query_window(episodes, episode_length):
    config = QueryConfig(strategy="qpa", qpa_episodes=episodes)
    window = hybrid_replay_window(config, episode_length)
    assert window == qpa_onpolicy_rows(idx=10**6, size=episodes, max_episode_len=episode_length)
    assert window == make_strategy("qpa").candidate_window(config, episode_length)
    assert hybrid_replay_window(QueryConfig(window=700), episode_length) == 700  # an explicit query window governs both


def test_hybrid_replay_stops_once_the_budget_is_spent_as_qpa():
    def qpa_her_ratio(total_feedback, max_feedback, her_ratio=0.5):  # train_QPA.py: update_onpolicy_sample vs update
        return her_ratio if total_feedback < max_feedback else 0.0

    for asked in (0, 90, 99, 100, 130):
        assert hybrid_replay_fraction(0.5, asked, budget=100) == qpa_her_ratio(asked, 100)


# ----------------------------------------------------------------------------- the API
def test_bad_indices_are_caught_with_the_strategy_name_and_problem():
    for indices, problem in [
        ([0, 0, 1], "duplicate"),
        ([0, 1, 7], "outside [0, 5)"),
        ([-1, 1, 2], "outside"),
        ([0, 1], "returned 2 indices, expected 3"),
        ([0.0, 1.0, 2.0], "integer"),
        ([[0, 1, 2]], "1-d"),
    ]:
        with pytest.raises(InvalidSelectionError, match=rf"'sloppy'.*{problem}" if problem != "outside [0, 5)" else r"'sloppy'.*outside \[0, 5\)"):
            validate_selection("sloppy", np.array(indices), pool_size=5, n=3)
    assert validate_selection("fine", np.array([4, 0, 2], np.int32), 5, 3).dtype == np.int64

    class Sloppy(QueryStrategy):
        def select(self, candidates, learner, n, rng):
            return np.zeros(n, np.int64)

    with pytest.raises(InvalidSelectionError, match="query strategy 'sloppy' returned duplicate indices"):
        select_queries("sloppy", Sloppy(), pool(np.zeros((5, 2))), None, 3, np.random.default_rng(0), QueryContext())


def test_context_reaches_only_strategies_that_ask_for_it():
    calls = []

    class Plain(QueryStrategy):
        def select(self, candidates, learner, n, rng):
            calls.append("plain")
            return np.arange(n)

    class WithContext(QueryStrategy):
        def select(self, candidates, learner, n, rng, context=None):
            calls.append(context.round_index)
            return np.arange(n)

    context = QueryContext(round_index=7)
    for strategy in (Plain(), WithContext()):
        select_queries("x", strategy, pool(np.zeros((4, 2))), None, 2, np.random.default_rng(0), context)
    assert calls == ["plain", 7]


def test_function_strategies_in_both_forms():
    @function_strategy
    def last(candidates, learner, n, rng):
        return np.arange(len(candidates))[-n:]

    @function_strategy(wants_pool=False)
    def by_round(candidates, learner, n, rng, context):
        return np.arange(n) + context.round_index

    assert issubclass(last, QueryStrategy) and last.wants_pool and not by_round.wants_pool
    candidates = pool(np.zeros((6, 2)))
    rng = np.random.default_rng(0)
    assert list(select_queries("last", last(), candidates, None, 2, rng, QueryContext())) == [4, 5]
    assert list(select_queries("r", by_round(), candidates, None, 2, rng, QueryContext(round_index=3))) == [3, 4]


def test_registry_lists_builtins_and_rejects_unknown_or_clashing_names(monkeypatch):
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    assert set(BUILTINS) <= set(available())
    with pytest.raises(ValueError, match="unknown query strategy 'nope'.*available: .*kcenter-entropy"):
        make_strategy("nope")
    with pytest.raises(ValueError, match="already registered"):
        register("entropy", lambda: None)
    register("mine", registry.BUILTIN["uniform"])
    assert "mine" in available() and isinstance(make_strategy("mine"), QueryStrategy)
    register("broken", lambda: object())
    with pytest.raises(TypeError, match="'broken' built a object, not a pbrl QueryStrategy"):
        make_strategy("broken")


def test_strategies_that_need_an_ensemble_say_so():
    with pytest.raises(TypeError, match="'entropy' needs a reward learner"):
        pick("entropy", pool(np.zeros((4, 2))), object(), 2)


def test_query_config_rejects_bad_values():
    for kwargs, match in [
        ({"pool_multiplier": 0}, "pool_multiplier"),
        ({"shortlist_fraction": 0.0}, "shortlist_fraction"),
        ({"shortlist_fraction": 1.5}, "shortlist_fraction"),
        ({"kcenter_features": "pixels"}, "kcenter_features"),
        ({"kcenter_projection": 0}, "kcenter_projection"),
        ({"qpa_episodes": 0}, "qpa_episodes"),
        ({"window": 0}, "window"),
    ]:
        with pytest.raises(ValueError, match=match):
            QueryConfig(**kwargs)


@pytest.mark.parametrize("name", BUILTINS)
def test_every_builtin_returns_valid_distinct_indices_on_a_random_pool(name):
    rng = np.random.default_rng(0)
    candidates = pool(rng.normal(size=(60, 3)), rng.normal(size=(60, 3)), recency=rng.integers(0, 1000, 60))
    learner = FixedLearner(rng.uniform(0.01, 0.99, size=(3, 60)))
    context = QueryContext(step=1000, episode_length=50)
    chosen = pick(name, candidates, learner, 6, context)
    assert len(set(chosen.tolist())) == 6
