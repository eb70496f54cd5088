"""PEBBLE's k-NN state-entropy reward."""

import torch

from pbrl.agents.state_entropy import RunningStd, StateEntropyReward
from pbrl.knn import knn_distance


def test_knn_distance_by_hand():
    reference = torch.tensor([[0.0], [1.0], [3.0], [6.0]])
    # For state 0: distances to reference = [0, 1, 3, 6]; k=1 → 2nd smallest (itself excluded) = 1; k=2 → 3.
    assert knn_distance(torch.tensor([[0.0]]), reference, k=1).item() == 1.0
    assert knn_distance(torch.tensor([[0.0]]), reference, k=2).item() == 3.0
    # Chunking does not change the answer.
    big = torch.randn(1000, 3)
    torch.testing.assert_close(knn_distance(big[:100], big, k=5, max_elements=3000), knn_distance(big[:100], big, k=5))


def test_isolated_states_earn_more():
    cluster = torch.randn(200, 2) * 0.01
    outlier = torch.tensor([[5.0, 5.0]])
    reference = torch.cat([cluster, outlier])
    reward = StateEntropyReward(k=5)(torch.cat([cluster[:3], outlier]), reference)
    assert reward[-1] > 10 * reward[:3].max()


def test_running_std_matches_numpy():
    stats, chunks = RunningStd(epsilon=0.0), [torch.randn(50) * 3 + 1 for _ in range(5)]
    stats.count = 0.0
    stats.mean, stats.var = 0.0, 0.0
    for c in chunks:
        stats.update(c)
    allx = torch.cat(chunks)
    assert abs(stats.std - allx.std(unbiased=False).item()) < 1e-4
