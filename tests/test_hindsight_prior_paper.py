"""Hindsight PRIOR restated from what could be read of Verma & Metcalf (ICLR 2024, arXiv 2404.08828).

Sources (the paper's body — its Eq. 3–4, Section 5.3, appendix — was not reachable here; see
docs/fidelity.md, "Hindsight PRIOR"):

* Abstract: a world model approximates "state importance within a trajectory" and the method
  "guides rewards to be proportional to state importance through an auxiliary predicted return
  redistribution objective" — the redistributed return is the reward model's predicted return
  R̂(σ) = Σ_t r̂(s_t, a_t), the target of step t is α_t R̂(σ).
* α: the ICLR 2024 reviews (reviewer 1: "why the attention coefficient for the state and action
  should be equally weighted within the α coefficient") and WiseRL's restatement
  ``alpha = 1/L * sum_l (attn_{s_t}^l + attn_{a_t}^l)`` over the last token's attention row:
  α_t = (1/(L H)) Σ_{l,h} (A^{l,h}_{last, s_t} + A^{l,h}_{last, a_t}).
* Squared error, the mean over segments and steps, the stop-gradient on R̂ and the average over
  heads are pbrl's choices, restated here as such.

Each restatement below is written with explicit loops over members, segments, steps, layers and
heads, independently of pbrl's vectorised code.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from pbrl.learners import BTEnsembleConfig, HindsightPrior, HindsightPriorConfig, prior_loss
from pbrl.learners.world_model import WorldModel
from pbrl.segments import Segments


# ---------------------------------------------------------------- the redistribution objective
def redistribution_loss_by_hand(rewards: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Per member e: mean over segments σ and steps t of (r̂_e,σ,t − α_σ,t · R̂_e(σ))², R̂_e(σ) = Σ_t r̂_e,σ,t."""
    members, segments, steps = rewards.shape
    out = np.zeros(members)
    for e in range(members):
        total = 0.0
        for b in range(segments):
            predicted_return = sum(rewards[e, b, t] for t in range(steps))  # Abstract: the *predicted* return
            for t in range(steps):
                target = alpha[b, t] * predicted_return  # rewards proportional to state importance
                total += (rewards[e, b, t] - target) ** 2
        out[e] = total / (segments * steps)
    return out


def test_prior_loss_is_the_predicted_return_redistribution():
    rng = np.random.default_rng(0)
    rewards = rng.normal(size=(3, 4, 5))
    alpha = rng.dirichlet(np.ones(5), size=4)
    got = prior_loss(torch.tensor(rewards), torch.tensor(alpha)).numpy()
    np.testing.assert_allclose(got, redistribution_loss_by_hand(rewards, alpha), rtol=1e-12)


def test_rewards_proportional_to_importance_are_a_fixed_point():
    alpha = torch.tensor([[0.1, 0.6, 0.3], [1 / 3, 1 / 3, 1 / 3]], dtype=torch.float64)
    returns = torch.tensor([[2.0], [-1.5]], dtype=torch.float64)
    rewards = (alpha * returns)[None]  # r̂_t = α_t R̂: the redistribution already holds
    assert prior_loss(rewards, alpha).item() == 0.0


@pytest.mark.parametrize("stop_gradient", [True, False])
def test_prior_loss_gradient_by_hand(stop_gradient):
    """d/dr_t of (1/T) Σ_u (r_u − α_u R)², R = Σ_u r_u: 2 (r_t − α_t R) / T, minus
    (2/T) Σ_u (r_u − α_u R) α_u when the target carries gradient (WiseRL's form)."""
    r = np.array([0.5, -1.0, 2.0, 0.25])
    alpha = np.array([0.4, 0.1, 0.3, 0.2])
    steps, ret = len(r), r.sum()
    residual = r - alpha * ret
    expected = 2 * residual / steps
    if not stop_gradient:
        expected = expected - 2 * (residual * alpha).sum() / steps
    rewards = torch.tensor(r[None, None], requires_grad=True)
    prior_loss(rewards, torch.tensor(alpha[None]), stop_gradient).sum().backward()
    np.testing.assert_allclose(rewards.grad[0, 0].numpy(), expected, rtol=1e-12)


def test_learner_takes_the_stop_gradient_knob():
    rng = np.random.default_rng(1)
    steps = torch.tensor(rng.normal(size=(2, 3, 4)), requires_grad=True)
    alpha = torch.tensor(rng.dirichlet(np.ones(4), size=3))
    for sg in (True, False):
        learner = HindsightPrior(2, 1, 4, BTEnsembleConfig(ensemble_size=2, hidden_sizes=(8,)),
                                 HindsightPriorConfig(weight=0.5, stop_gradient=sg), seed=0)
        index = torch.arange(3)
        got = learner.extra_loss(steps, steps, index, (alpha, alpha))
        (g_got,) = torch.autograd.grad(got.sum(), steps)
        want = 0.5 * prior_loss(steps, alpha, sg)
        (g_want,) = torch.autograd.grad(want.sum(), steps)
        torch.testing.assert_close(got, want)
        torch.testing.assert_close(g_got, g_want)


# ---------------------------------------------------------------- α from the world model's attention
def one_layer_attention_by_hand(world: WorldModel, obs: np.ndarray, actions: np.ndarray) -> np.ndarray:
    """The one block's causal attention [B, H, N, N] recomputed from the parameters, tokens
    interleaved s_0, a_0, s_1, a_1, … with a learned position embedding per token."""
    p = {k: v.detach().double().numpy() for k, v in world.state_dict().items()}
    b, t = obs.shape[:2]
    tokens = np.zeros((b, 2 * t, p["position"].shape[-1]))
    for i in range(t):
        tokens[:, 2 * i] = obs[:, i] @ p["embed_state.weight"].T + p["embed_state.bias"]
        tokens[:, 2 * i + 1] = actions[:, i] @ p["embed_action.weight"].T + p["embed_action.bias"]
    tokens += p["position"][:, : 2 * t]
    mean, var = tokens.mean(-1, keepdims=True), tokens.var(-1, keepdims=True)
    normed = (tokens - mean) / np.sqrt(var + 1e-5) * p["blocks.0.norm1.weight"] + p["blocks.0.norm1.bias"]
    qkv = normed @ p["blocks.0.attention.qkv.weight"].T + p["blocks.0.attention.qkv.bias"]
    dim, heads = tokens.shape[-1], world.blocks[0].attention.heads
    width = dim // heads
    q, k = qkv[..., :dim], qkv[..., dim : 2 * dim]
    n = 2 * t
    weights = np.zeros((b, heads, n, n))
    for h in range(heads):
        qh, kh = q[..., h * width : (h + 1) * width], k[..., h * width : (h + 1) * width]
        for i in range(n):
            scores = np.array([[qh[s, i] @ kh[s, j] / math.sqrt(width) for j in range(i + 1)] for s in range(b)])
            scores = np.exp(scores - scores.max(axis=1, keepdims=True))
            weights[:, h, i, : i + 1] = scores / scores.sum(axis=1, keepdims=True)  # causal softmax
    return weights


def alpha_by_hand(attention: np.ndarray, last_step: np.ndarray) -> np.ndarray:
    """α_t = (1/(L H)) Σ_{l,h} (A^{l,h}_{last, s_t} + A^{l,h}_{last, a_t}); ``attention`` [B, L, H, N, N],
    ``last`` = the action token of the segment's last step."""
    b, layers, heads, n = attention.shape[:4]
    alpha = np.zeros((b, n // 2))
    for s in range(b):
        row = 2 * last_step[s] + 1
        for t in range(n // 2):
            total = 0.0
            for l in range(layers):
                for h in range(heads):
                    total += attention[s, l, h, row, 2 * t] + attention[s, l, h, row, 2 * t + 1]
            alpha[s, t] = total / (layers * heads)
    return alpha


def test_importance_is_the_last_tokens_state_plus_action_attention_one_layer():
    torch.manual_seed(0)
    world = WorldModel(3, 2, 6, dim=8, layers=1, heads=2).double()
    rng = np.random.default_rng(0)
    obs, actions = rng.normal(size=(4, 6, 3)), rng.normal(size=(4, 6, 2))
    by_hand = one_layer_attention_by_hand(world, obs, actions)
    np.testing.assert_allclose(world(torch.tensor(obs), torch.tensor(actions))[1][:, 0].detach().numpy(), by_hand, atol=1e-12)
    expected = alpha_by_hand(by_hand[:, None], np.full(4, 5))
    got = world.importance(torch.tensor(obs), torch.tensor(actions)).numpy()
    np.testing.assert_allclose(got, expected, atol=1e-12)
    np.testing.assert_allclose(got.sum(axis=1), 1.0, atol=1e-12)


def test_importance_averages_layers_and_heads_and_stops_at_the_last_step():
    torch.manual_seed(1)
    world = WorldModel(3, 2, 7, dim=12, layers=3, heads=3).double()
    rng = np.random.default_rng(1)
    obs, actions = torch.tensor(rng.normal(size=(5, 7, 3))), torch.tensor(rng.normal(size=(5, 7, 2)))
    attention = world(obs, actions)[1].detach().numpy()
    last = np.array([6, 3, 0, 5, 2])
    got = world.importance(obs, actions, torch.tensor(last)).numpy()
    np.testing.assert_allclose(got, alpha_by_hand(attention, last), atol=1e-12)
    for s, l in enumerate(last):
        assert (got[s, l + 1 :] == 0).all()
        assert got[s, : l + 1].sum() == pytest.approx(1.0, abs=1e-12)


def test_learner_importance_of_padded_segments_uses_the_terminal_steps_action_token():
    learner = HindsightPrior(3, 2, 5, BTEnsembleConfig(ensemble_size=1, hidden_sizes=(8,)), seed=0)
    assert learner.world.tokens == "state_action"  # the default is the two-token α
    rng = np.random.default_rng(2)
    obs, actions = rng.normal(size=(3, 5, 3)).astype(np.float32), rng.normal(size=(3, 5, 2)).astype(np.float32)
    terminals = np.zeros((3, 5), bool)
    terminals[1, 2] = True  # steps 3, 4 absorbing: the last step is 2
    terminals[2, 0] = True  # steps 1… absorbing: the last step is 0
    segments = Segments(obs, actions, obs.copy(), terminals=terminals)
    attention = learner.world(torch.tensor(obs), torch.tensor(actions))[1].detach().double().numpy()
    expected = alpha_by_hand(attention, np.array([4, 2, 0]))
    np.testing.assert_allclose(learner.importance(segments).double().numpy(), expected, atol=1e-6)


def test_one_token_layout_stays_available():
    torch.manual_seed(2)
    world = WorldModel(3, 2, 5, dim=8, layers=2, heads=2, tokens="step").double()
    obs, actions = torch.randn(2, 5, 3, dtype=torch.float64), torch.randn(2, 5, 2, dtype=torch.float64)
    attention = world(obs, actions)[1]
    assert attention.shape == (2, 2, 2, 5, 5)
    torch.testing.assert_close(world.importance(obs, actions), attention[:, :, :, -1, :].mean(dim=(1, 2)))
    with pytest.raises(ValueError, match="world_tokens"):
        HindsightPriorConfig(world_tokens="tokens")


def test_resuming_a_checkpoint_of_the_other_layout_says_which_to_set():
    old = HindsightPrior(3, 2, 5, BTEnsembleConfig(ensemble_size=1, hidden_sizes=(8,)), HindsightPriorConfig(world_tokens="step"), seed=0)
    new = HindsightPrior(3, 2, 5, BTEnsembleConfig(ensemble_size=1, hidden_sizes=(8,)), seed=0)
    with pytest.raises(ValueError, match="world_tokens=step"):
        new.load_state_dict(old.state_dict())
