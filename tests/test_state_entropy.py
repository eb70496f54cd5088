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


class TorchRunningMeanStd:
    """rll-research/BPref utils.py L211–247, as written (the mean update at L240 included)."""

    def __init__(self, epsilon=1e-4, shape=()):
        self.mean, self.var, self.count = torch.zeros(shape), torch.ones(shape), epsilon

    def update(self, x):
        batch_mean, batch_var, batch_count = torch.mean(x, axis=0), torch.var(x, axis=0), x.shape[0]
        delta = batch_mean - self.mean
        tot_count = self.count + batch_count
        new_mean = self.mean + delta + batch_count / tot_count
        M2 = self.var * self.count + batch_var * batch_count + torch.pow(delta, 2) * self.count * batch_count / tot_count
        self.mean, self.var, self.count = new_mean, M2 / tot_count, tot_count

    @property
    def std(self):
        return torch.sqrt(self.var)


def test_bpref_code_std_is_bprefs_torch_running_mean_std():
    """agent.state_entropy_std='bpref-code': B-Pref's PEBBLE normalisation, agent/sac.py L170–177
    (``s_ent_stats.update(state_entropy)``; ``state_entropy / s_ent_stats.std``), over five SAC batches."""
    torch.manual_seed(0)
    states = torch.randn(400, 3)
    ours, theirs = StateEntropyReward(k=5, std="bpref-code"), TorchRunningMeanStd(shape=[1])
    for _ in range(5):
        batch = states[torch.randint(0, 400, (64,))]
        entropy = knn_distance(batch, states, 5)[:, None]  # B-Pref keeps a [B, 1] column
        theirs.update(entropy)
        torch.testing.assert_close(ours(batch, states), (entropy / theirs.std)[:, 0])
    # pbrl's default ('running', the std of every distance so far) gives other numbers on the same batch
    batch = states[:64]
    assert not torch.allclose(StateEntropyReward(k=5)(batch, states), StateEntropyReward(k=5, std="bpref-code")(batch, states))
