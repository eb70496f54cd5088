"""The Preference Transformer against its reference (csmile-1006/PreferenceTransformer): the
forward pass — tokens, GPT-2 blocks, the preference attention and the attention-weighted
score — restated after ``TransRewardModel.__call__`` / ``ops.attention`` with our weights;
the loss (``cross_ent_loss`` on the ``mean`` scores), the learning-rate schedule
(``optax.warmup_cosine_decay_schedule``) and the windows of ``reward_from_preference_transformer``;
then learning, determinism and P-IQL with a PT reward."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from pbrl.learners.preference_transformer import PreferenceTransformer, PreferenceTransformerConfig, warmup_cosine
from pbrl.segments import PreferenceDataset, Segments

SMALL = PreferenceTransformerConfig(embed_dim=16, layers=2, heads=2, preference_dim=8, max_episode_steps=50, epochs=40, batch_size=32, lr=3e-4, context=4)


# ---------------------------------------------------------------- the reference, restated in torch
def dense(layer, x):
    return x @ layer.weight.T + layer.bias


def layer_norm(layer, x):
    return F.layer_norm(x, x.shape[-1:], layer.weight, layer.bias, 1e-5)


def split_heads(x, num_heads, head_dim):
    return x.reshape(x.shape[:-1] + (num_heads, head_dim)).permute(0, 2, 1, 3)


def merge_heads(x, num_heads, head_dim):
    x = x.permute(0, 2, 1, 3)
    return x.reshape(x.shape[:-2] + (num_heads * head_dim,))


def get_attention_mask(attn_mask, batch_size):
    attn_mask = attn_mask.reshape(batch_size, -1)[:, None, None, :]
    return (1.0 - attn_mask) * -10000.0


def attention(query, key, value, casual_mask, masked_bias, scale_attn_weights, attn_mask=None):
    """``ops.attention`` (eval mode: no dropout, no head mask)."""
    attn_weights = query @ key.transpose(-1, -2)
    if scale_attn_weights:
        attn_weights = attn_weights / (float(value.shape[-1]) ** 0.5)
    attn_weights = torch.where(casual_mask, attn_weights, torch.tensor(masked_bias))
    if attn_mask is not None:
        attn_weights = attn_weights + attn_mask
    attn_weights = attn_weights.softmax(dim=-1)
    return attn_weights @ value, attn_weights


def reference_forward(net, states, actions, timesteps, attn_mask, n_head):
    """``TransRewardModel.__call__`` with ``use_weighted_sum=True``, ``reverse=False``, ``target_idx=1``."""
    batch_size, seq_length = states.shape[0], states.shape[1]
    embd_dim = net.embed_norm.weight.shape[0]
    embd_state = dense(net.embed_state, states)
    embd_action = dense(net.embed_action, actions)
    embd_timestep = net.embed_timestep.weight[timesteps]
    embd_state = embd_state + embd_timestep
    embd_action = embd_action + embd_timestep
    stacked_inputs = torch.stack([embd_action, embd_state], dim=1).permute(0, 2, 1, 3).reshape(batch_size, 2 * seq_length, embd_dim)
    stacked_inputs = layer_norm(net.embed_norm, stacked_inputs)
    stacked_attn_mask = torch.stack([attn_mask, attn_mask], dim=1).permute(0, 2, 1).reshape(batch_size, 2 * seq_length)
    # GPT2Model
    x = stacked_inputs
    mask = get_attention_mask(stacked_attn_mask, batch_size)
    head_dim = embd_dim // n_head
    for block in net.blocks:  # GPT2Block
        residual = x
        x = layer_norm(block.norm1, x)
        qkv = dense(block.attention.qkv, x)  # GPT2SelfAttention
        query, key, value = torch.split(qkv, embd_dim, dim=2)
        query, key, value = (split_heads(t, n_head, head_dim) for t in (query, key, value))
        n = query.shape[-2]
        casual_mask = torch.tril(torch.ones((1, 1, 1024, 1024)))[:, :, n - n : n, :n].bool()
        out, _ = attention(query, key, value, casual_mask, -1e4, True, mask)
        x = dense(block.attention.out, merge_heads(out, n_head, head_dim)) + residual
        residual = x
        x = layer_norm(block.norm2, x)
        x = dense(block.mlp[2], torch.relu(dense(block.mlp[0], x))) + residual  # GPT2MLP
    x = layer_norm(net.final_norm, x)
    x = x.reshape(batch_size, seq_length, 2, embd_dim).permute(0, 2, 1, 3)
    hidden_output = x[:, 1]
    p = net.config.preference_dim
    x = dense(net.head, hidden_output)
    query, key, value = x[..., :p], x[..., p : 2 * p], x[..., 2 * p :]
    query, key, value = split_heads(query, 1, p), split_heads(key, 1, p), split_heads(value, 1, 1)
    casual_mask = torch.ones((1, 1, seq_length, seq_length)).bool()
    out, _ = attention(query, key, value, casual_mask, -1e-4, True, get_attention_mask(attn_mask, batch_size))
    return {"weighted_sum": merge_heads(out, 1, 1), "value": merge_heads(value, 1, 1)}


def segments(count: int, length: int, rng: np.random.Generator) -> Segments:
    obs = rng.normal(size=(count, length, 3)).astype(np.float32)
    return Segments(obs, rng.uniform(-1, 1, (count, length, 2)).astype(np.float32), obs)


# ---------------------------------------------------------------- tests
def test_forward_and_attention_weighted_score_match_reference() -> None:
    learner = PreferenceTransformer(3, 2, SMALL, seed=0)
    learner.net.eval()
    rng = np.random.default_rng(0)
    seg = segments(5, 7, rng)
    obs, act = torch.as_tensor(seg.obs), torch.as_tensor(seg.actions)
    timesteps = torch.arange(1, 8).expand(5, -1)
    mask = torch.ones(5, 7)
    mask[1, :3] = 0.0  # a padded window
    with torch.no_grad():
        z, v = learner.net(obs, act, timesteps * mask.long(), mask)
        ref = reference_forward(learner.net, obs, act, timesteps * mask.long(), mask, SMALL.heads)
    torch.testing.assert_close(z, ref["weighted_sum"][..., 0], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(v, ref["value"][..., 0], rtol=1e-5, atol=1e-5)
    # train_type 'mean': the score is the mean over steps of the attention-weighted values
    full = torch.ones(5, 7)
    with torch.no_grad():
        ours = learner.scores(obs, act, timesteps, full)
        ref = reference_forward(learner.net, obs, act, timesteps, full, SMALL.heads)
    torch.testing.assert_close(ours, ref["weighted_sum"].reshape(5, 7).mean(dim=1), rtol=1e-5, atol=1e-6)
    assert ours.std() > 0


def test_loss_is_the_references_cross_entropy() -> None:
    """``cross_ent_loss(logits=[R̂¹, R̂²], one-hot label)`` equals BT's BCE on R̂¹ − R̂² (labels y = P[σ¹ ≻ σ²])."""
    g = torch.Generator().manual_seed(0)
    r1, r2, y = torch.randn(20, generator=g), torch.randn(20, generator=g), torch.randint(0, 2, (20,), generator=g).float()
    y[:3] = 0.5
    logits = torch.stack([r1, r2], dim=1)
    reference = torch.mean(-(torch.stack([y, 1 - y], dim=1) * logits.log_softmax(dim=-1)).sum(-1))  # optax.softmax_cross_entropy
    torch.testing.assert_close(F.binary_cross_entropy_with_logits(r1 - r2, y), reference)


def test_schedule_matches_optax_warmup_cosine() -> None:
    def optax_warmup_cosine_decay(init_value, peak_value, warmup_steps, decay_steps, end_value):
        def schedule(count):
            if count < warmup_steps:
                return init_value + (peak_value - init_value) * count / warmup_steps
            count = min(count - warmup_steps, decay_steps - warmup_steps)
            cosine = 0.5 * (1 + math.cos(math.pi * count / (decay_steps - warmup_steps)))
            return end_value + (peak_value - end_value) * cosine
        return schedule

    ref = optax_warmup_cosine_decay(1e-4, 1e-3, 30, 300, 1e-4)
    for step in (0, 1, 15, 29, 30, 31, 150, 299, 300, 400):
        assert warmup_cosine(step, 30, 300, 1e-4) == pytest.approx(ref(step), rel=1e-12)


def test_trajectory_rewards_use_the_references_windows() -> None:
    """``reward_from_preference_transformer`` (label_mode 'last') on one 7-step trajectory, context 4."""
    learner = PreferenceTransformer(3, 2, SMALL, seed=1)
    rng = np.random.default_rng(2)
    traj_obs, traj_act = rng.normal(size=(7, 3)).astype(np.float32), rng.uniform(-1, 1, (7, 2)).astype(np.float32)
    seq_len, observation_dim, action_dim = SMALL.context, 3, 2
    expected = []
    for _seg_idx in range(7):
        if _seg_idx < seq_len - 1:
            __input_obs = np.concatenate([np.zeros((seq_len - 1 - _seg_idx, observation_dim)), traj_obs[: _seg_idx + 1, :]], axis=0)
            __input_act = np.concatenate([np.zeros((seq_len - 1 - _seg_idx, action_dim)), traj_act[: _seg_idx + 1, :]], axis=0)
            __input_timestep = np.concatenate([np.zeros(seq_len - 1 - _seg_idx, dtype=np.int32), np.arange(1, _seg_idx + 2, dtype=np.int32)], axis=0)
            __input_attn_mask = np.concatenate([np.zeros(seq_len - 1 - _seg_idx, dtype=np.int32), np.ones(_seg_idx + 1, dtype=np.float32)], axis=0)
        else:
            __input_obs = traj_obs[_seg_idx - seq_len + 1 : _seg_idx + 1, :]
            __input_act = traj_act[_seg_idx - seq_len + 1 : _seg_idx + 1, :]
            __input_timestep = np.arange(1, seq_len + 1, dtype=np.int32)
            __input_attn_mask = np.ones((seq_len), dtype=np.float32)
        as_t = lambda a, dtype=torch.float32: torch.as_tensor(np.asarray(a), dtype=dtype)[None]  # noqa: E731
        with torch.no_grad():
            ref = reference_forward(learner.net, as_t(__input_obs), as_t(__input_act), as_t(__input_timestep, torch.long), as_t(__input_attn_mask), SMALL.heads)
        expected.append((ref["value"].reshape(1, seq_len) * as_t(__input_attn_mask))[0, -1].item())
    np.testing.assert_allclose(learner.trajectory_rewards(traj_obs, traj_act), expected, rtol=1e-5, atol=1e-6)


def _task(count: int, seed: int):
    """Preference by Σ_t obs[t, 0] over 8-step segments."""
    rng = np.random.default_rng(seed)
    left, right = segments(count, 8, rng), segments(count, 8, rng)
    return PreferenceDataset(left, right, (left.obs[..., 0].sum(1) > right.obs[..., 0].sum(1)).astype(np.float64))


def test_learns_a_segment_preference_and_is_deterministic() -> None:
    train, test = _task(200, 0), _task(200, 1)
    learner = PreferenceTransformer(3, 2, SMALL, seed=0)
    metrics = learner.update(train)
    accuracy = np.mean((learner.preference_probability(test.left, test.right) > 0.5) == (test.labels > 0.5))
    assert metrics["train_accuracy"] > 0.8 and accuracy > 0.75
    again = PreferenceTransformer(3, 2, SMALL, seed=0)
    again.update(train)
    np.testing.assert_array_equal(learner.preference_probability(test.left, test.right), again.preference_probability(test.left, test.right))
    restored = PreferenceTransformer(3, 2, SMALL, seed=7)
    restored.load_state_dict(learner.state_dict())
    x = test.left.obs[:, 0]
    np.testing.assert_array_equal(learner.reward(x, test.left.actions[:, 0], x), restored.reward(x, test.left.actions[:, 0], x))


def test_preference_iql_takes_a_pt_reward() -> None:
    from pbrl.learners.ipl import IPLConfig
    from pbrl.learners.piql import PreferenceIQL

    reward = PreferenceTransformer(3, 2, PreferenceTransformerConfig(**{**SMALL.__dict__, "epochs": 5}), seed=0)
    learner = PreferenceIQL(3, 2, reward, IPLConfig(hidden_sizes=(16,), batch_size=8, steps_per_update=5), seed=0)
    metrics = learner.update(_task(32, 0))
    assert "reward_model/train_accuracy" in metrics and np.isfinite(metrics["td_loss"])
    assert learner.act(np.zeros((2, 3))).shape == (2, 2)


def test_episode_rewards_serve_the_windowed_reward_of_known_transitions() -> None:
    from types import SimpleNamespace

    from pbrl.learners.preference_transformer import EpisodeRewards

    rng = np.random.default_rng(3)
    obs, actions = rng.normal(size=(12, 3)), rng.uniform(-1, 1, (12, 2))
    episodes = SimpleNamespace(obs=obs, actions=actions, start=np.array([0, 5]), length=np.array([5, 7]))
    model = PreferenceTransformer(3, 2, SMALL, seed=0)
    reward = EpisodeRewards(model, episodes)
    expected = np.concatenate([model.trajectory_rewards(obs[:5], actions[:5]), model.trajectory_rewards(obs[5:], actions[5:])])
    order = np.array([7, 0, 11, 3])
    as_t = lambda a: torch.as_tensor(a, dtype=torch.float32)  # noqa: E731
    served = reward.reward_tensor(as_t(obs[order]), as_t(actions[order]), as_t(obs[order])).numpy()
    np.testing.assert_allclose(served, expected[order], rtol=1e-6)
    stranger = rng.normal(size=(1, 3))  # not in the episodes: the one-step read
    one_step = model.reward_tensor(as_t(stranger), as_t(actions[:1]), as_t(stranger)).numpy()
    np.testing.assert_allclose(reward.reward_tensor(as_t(stranger), as_t(actions[:1]), as_t(stranger)).numpy(), one_step)
    assert not np.allclose(expected[6:], model.reward_tensor(as_t(obs[6:]), as_t(actions[6:]), as_t(obs[6:])).numpy())  # context matters
