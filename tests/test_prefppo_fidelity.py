"""PrefPPO as B-Pref runs it (rll-research/BPref @ f3ece2e, ``train_PrefPPO.py``): the unsupervised phase,
the value-head reset, observation normalisation and what the reward model sees, checkpoint and resume.

B-Pref's code is restated below from the files and lines cited; pbrl's code is compared with it.
"""

from __future__ import annotations

import copy
from functools import partial

import numpy as np
import pytest
import torch
from gymnasium import spaces
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.vec_env import DummyVecEnv, VecEnv, VecNormalize

from pbrl import Runner, envs
from pbrl.agents.config import PPOConfig
from pbrl.agents.ppo import OBS_STATS, STATE_ENTROPY, PPOAgent, PrefPPO, StateEntropyVecEnv
from pbrl.agents.preference_env import PreferenceVecEnv
from pbrl.experiments.config import load_run_config
from pbrl.learners import BTEnsemble, BTEnsembleConfig
from pbrl.registry import BuildContext
from pbrl.store import PreferenceStore
from pbrl.transitions import TransitionLog
from tests.test_training import tiny_ppo


# ----------------------------------------------------------------------------- B-Pref, restated
def bpref_unsupervised_rewards(steps: list[np.ndarray], capacity: int, k: int = 5) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """The reward ``collect_rollouts_unsuper`` (``stable_baselines3/common/on_policy_with_reward_algorithm.py``
    L363–373) puts into the rollout buffer at each step, from the original observations ``steps[t]`` ``[n_envs, d]``;
    also the un-normalised k-NN distances. ``EntReplayBuffer.add_obs`` / ``compute_state_entropy``
    (``common/buffers.py`` L309–346, the store of ``unsuper_step + 100`` rows, L152–160) and
    ``utils.TorchRunningMeanStd`` with ``update_mean_var_count_from_moments`` (``utils.py`` L211–247), as written."""
    n_envs, dim = steps[0].shape
    observations, pos, full = np.zeros((capacity, dim), np.float32), 0, False
    mean, var, count = torch.zeros(1), torch.ones(1), 1e-4  # TorchRunningMeanStd(shape=[1]) L212–215
    rewards, distances = [], []
    for obs_origin in steps:
        # replay_buffer.add_obs(obs_origin)  (buffers.py L332–346)
        next_index = pos + n_envs
        if next_index >= capacity:
            full = True
            maximum_index = capacity - pos
            observations[pos:] = np.array(obs_origin[:maximum_index]).copy()
            remain = n_envs - maximum_index
            if remain > 0:
                observations[0:remain] = np.array(obs_origin[maximum_index:]).copy()
            pos = remain
        else:
            observations[pos:next_index] = np.array(obs_origin).copy()
            pos = next_index
        # state_entropy = replay_buffer.compute_state_entropy(obs_origin)  (buffers.py L309–330, k=5)
        full_obs = torch.as_tensor(observations) if full else torch.as_tensor(observations[:pos])
        obs = torch.as_tensor(obs_origin)
        dists = []
        for idx in range(len(full_obs) // 500 + 1):
            start, end = idx * 500, (idx + 1) * 500
            dists.append(torch.norm(obs[:, None, :] - full_obs[None, start:end, :], dim=-1, p=2))
        state_entropy = torch.kthvalue(torch.cat(dists, dim=1), k=k + 1, dim=1).values.unsqueeze(1)
        # self.s_ent_stats.update(state_entropy)  (utils.py L217–227, L234–247)
        batch_mean, batch_var, batch_count = torch.mean(state_entropy, axis=0), torch.var(state_entropy, axis=0), state_entropy.shape[0]
        delta = batch_mean - mean
        tot_count = count + batch_count
        new_mean = mean + delta + batch_count / tot_count
        m_a, m_b = var * count, batch_var * batch_count
        M2 = m_a + m_b + torch.pow(delta, 2) * count * batch_count / tot_count
        mean, var, count = new_mean, M2 / tot_count, tot_count
        # norm_state_entropy = state_entropy / self.s_ent_stats.std; pred_reward = ….reshape(-1)  (L367, L373)
        rewards.append((state_entropy / torch.sqrt(var)).reshape(-1).numpy())
        distances.append(state_entropy.reshape(-1).numpy())
    return rewards, distances


def bpref_reset_value(policy) -> None:
    """``ActorCriticPolicy.reset_value`` (``common/policies.py`` L538–543) with ``BasePolicy.init_weights`` (L217–225)."""

    def init_weights(module, gain=1):
        if isinstance(module, (torch.nn.Linear, torch.nn.Conv2d)):
            torch.nn.init.orthogonal_(module.weight, gain=gain)
            if module.bias is not None:
                module.bias.data.fill_(0.0)

    module_gains = {policy.value_net: 1}
    for module, gain in module_gains.items():
        module.apply(partial(init_weights, gain=gain))


# ----------------------------------------------------------------------------- helpers
class ScriptedVecEnv(VecEnv):
    """Observations from a script (``frames[t]`` after t steps), reward 0, never done."""

    def __init__(self, frames: np.ndarray) -> None:
        super().__init__(frames.shape[1], spaces.Box(-np.inf, np.inf, frames.shape[2:], np.float32), spaces.Box(-1, 1, (1,), np.float32))
        self.frames, self.t = frames, 0

    def reset(self):
        self.t = 0
        return self.frames[0].copy()

    def step_async(self, actions) -> None:
        pass

    def step_wait(self):
        self.t += 1
        return self.frames[self.t].copy(), np.zeros(self.num_envs, np.float32), np.zeros(self.num_envs, bool), [{} for _ in range(self.num_envs)]

    def close(self) -> None:
        pass

    def get_attr(self, attr_name, indices=None):
        return [None] * self.num_envs

    def set_attr(self, attr_name, value, indices=None) -> None:
        pass

    def env_method(self, method_name, *args, indices=None, **kwargs):
        return [None] * self.num_envs

    def env_is_wrapped(self, wrapper_class, indices=None):
        return [False] * self.num_envs


def ctx(obs_dim: int = 4, act_dim: int = 1) -> BuildContext:
    return BuildContext("gym:InvertedPendulum-v5", obs_dim, act_dim, 40, seed=0)


def pendulum(n: int = 1) -> DummyVecEnv:
    return DummyVecEnv([lambda i=i: envs.make("gym:InvertedPendulum-v5", seed=i, max_episode_steps=40) for i in range(n)])


# ----------------------------------------------------------------------------- (a) the intrinsic reward
@pytest.mark.parametrize("std", ["bpref-code", "running"])
def test_state_entropy_reward_is_bprefs_on_the_original_observations(std):
    """Through VecNormalize, so that the reward must come from the original observations (B-Pref ``get_original_obs()``, L363).
    A store of 30 rows with 8 envs (B-Pref's k-NN needs ≥ k + 1 = 6 rows at the first step) wraps around, as ``add_obs``. 'bpref-code' reproduces B-Pref's reward; 'running'
    has B-Pref's k-NN distances, divided by pbrl's running std of all of them."""
    rng = np.random.default_rng(0)
    frames = np.cumsum(rng.normal(size=(9, 8, 4)), axis=0).astype(np.float32) * 3 + 5  # far from normalised
    normalizer = VecNormalize(ScriptedVecEnv(frames), norm_obs=True, norm_reward=False)
    env = StateEntropyVecEnv(normalizer, capacity=30, original=lambda obs: normalizer.get_original_obs(), std=std)
    seen = [env.reset()]
    rewards, stds = [], []
    for _ in range(8):
        env.step_async(np.zeros((8, 1), np.float32))
        obs, reward, _, _ = env.step_wait()
        seen.append(obs)
        rewards.append(reward)
        stds.append(env.reward.stats.std)
    assert not np.allclose(seen[3], frames[3])  # the policy sees normalised observations
    expected, distances = bpref_unsupervised_rewards(list(frames[:8]), capacity=30)  # step t rewards s_t
    if std == "bpref-code":
        np.testing.assert_allclose(np.stack(rewards), np.stack(expected), rtol=1e-5)
    else:
        np.testing.assert_allclose(np.stack(rewards) * np.array(stds)[:, None], np.stack(distances), rtol=1e-5)
        assert not np.allclose(np.stack(rewards), np.stack(expected), rtol=1e-2)  # the two normalisers do differ


# ----------------------------------------------------------------------------- (b) the value-head reset
class _Rounds(BaseCallback):
    """Feedback rounds at rollout start at ``steps`` (as pbrl's FeedbackCallback: the hooks after each), then snapshots."""

    def __init__(self, hooks, steps: tuple[int, ...]) -> None:
        super().__init__()
        self.hooks, self.steps, self.snapshots = hooks, steps, []

    def _on_rollout_start(self) -> None:
        if self.num_timesteps in self.steps:
            self.hooks.after_round(None)
        self.snapshots.append((self.num_timesteps, copy.deepcopy(self.model.policy.state_dict())))

    def _on_step(self) -> bool:
        return True


def test_value_head_is_reinitialised_once_at_the_first_round_as_bpref_and_nothing_else(monkeypatch):
    config = PPOConfig(n_envs=1, n_steps=32, batch_size=32, n_epochs=2, hidden_sizes=(8, 8), normalize_reward=False,
                       unsupervised_steps=64, unsupervised_epochs=5)
    agent = PPOAgent(config, ctx())
    env = agent.wrap(agent.wrap_observations(pendulum(), None), None)
    model = agent.build(env, None, 160)
    epochs: list[int] = []
    monkeypatch.setattr(PPO, "train", lambda self: epochs.append(self.n_epochs))  # PrefPPO.train sets the epochs; no update
    rounds = _Rounds(agent.hooks(model), steps=(64, 96))
    model.learn(160, callback=rounds)
    assert epochs == [5, 5, 2, 2, 2]  # train_unsuper's 50 (here 5) epochs in the phase, n_epochs after (learn_unsuper L648–651)
    assert model.value_reset_step == 64 and not model.unsupervised_phase
    assert agent.state_entropy.states is None  # the phase's store is freed
    states = dict(rounds.snapshots)
    for a, b in zip(rounds.snapshots, rounds.snapshots[1:]):
        changed = {k for k in a[1] if not torch.equal(a[1][k], b[1][k])}
        expected = {"value_net.weight"} if b[0] == 64 else set()  # (its bias: 0 before and after)
        assert changed == expected, (a[0], b[0], changed)  # once, at the first round, the value head only
    # the reset is B-Pref's reset_value: same weights from the same generator state
    before = copy.deepcopy(model.policy)
    before.load_state_dict(states[32])
    reference = copy.deepcopy(before)
    fresh = PrefPPO("MlpPolicy", pendulum(), n_steps=32, batch_size=32, policy_kwargs={"net_arch": [8, 8]}, unsupervised_steps=1, device="cpu")
    fresh.policy.load_state_dict(states[32])
    torch.manual_seed(7)
    bpref_reset_value(reference)
    torch.manual_seed(7)
    fresh.end_unsupervised_phase()
    for key, value in reference.state_dict().items():
        assert torch.equal(fresh.policy.state_dict()[key], value), key
    assert not torch.equal(reference.value_net.weight, before.value_net.weight)
    fresh.end_unsupervised_phase()  # once only
    assert torch.equal(fresh.policy.value_net.weight, reference.value_net.weight)


def test_no_phase_no_reset():
    """unsupervised_steps = 0 (the default): B-Pref's plain learn() (L533–588), no reset_value, n_epochs throughout."""
    agent = PPOAgent(PPOConfig(n_envs=1, n_steps=32, batch_size=32, n_epochs=1, hidden_sizes=(8,), normalize_reward=False), ctx())
    model = agent.build(agent.wrap(pendulum(), None), None, 64)
    weights = model.policy.value_net.weight.detach().clone()
    agent.hooks(model).after_round(None)
    assert not model.unsupervised_phase and model.value_reset_step is None and agent.state_entropy is None
    assert torch.equal(model.policy.value_net.weight, weights)


# ----------------------------------------------------------------------------- (c) what the reward model sees
class RecordingLearner(BTEnsemble):
    def reward(self, obs, actions, next_obs):
        self.seen.append(np.array(obs, copy=True))
        return super().reward(obs, actions, next_obs)


def test_with_normalize_obs_the_reward_model_gets_the_policys_normalised_observations():
    """B-Pref's reward model gets ``obsact = concat(self._last_obs, clipped_actions)`` (L250, r_hat_batch L256), and
    ``self._last_obs`` is the VecNormalize output (train_PrefPPO.py L152–153), the very array PPO puts into its rollout
    buffer (L314). pbrl: the learner's obs at every step = PPO's rollout-buffer obs = the logged obs ≠ the original."""
    config = PPOConfig(n_envs=2, n_steps=16, batch_size=32, n_epochs=1, hidden_sizes=(8,), normalize_reward=False, normalize_obs=True)
    agent = PPOAgent(config, ctx())
    learner = RecordingLearner(4, 1, BTEnsembleConfig(hidden_sizes=(8,)), seed=0)
    learner.seen = []
    log = TransitionLog(1000, n_envs=2)
    venv = agent.wrap_observations(pendulum(2), None)
    originals = []
    env = agent.wrap(PreferenceVecEnv(venv, learner, log), None)
    model = agent.build(env, learner, 32)

    class Originals(BaseCallback):
        def _on_rollout_start(self):
            originals.append(agent.obs_normalizer.get_original_obs())

        def _on_step(self):
            originals.append(agent.obs_normalizer.get_original_obs())
            return True

    model.learn(32, callback=Originals())
    seen = np.stack(learner.seen)  # [16, 2, 4]
    buffer = model.rollout_buffer.observations  # flattened env-major by SB3's training pass (swap_and_flatten)
    np.testing.assert_array_equal(seen.swapaxes(0, 1).reshape(buffer.shape), buffer)
    np.testing.assert_array_equal(seen, log.arrays["obs"][:16])  # the segments queried and learned from
    raw = np.stack(originals[:16])  # B-Pref's get_original_obs() of the same steps
    assert np.abs(seen - raw).max() > 0.1
    # evaluation: predict takes original observations and normalises them with the frozen training statistics
    rms = copy.deepcopy(agent.obs_normalizer.obs_rms)
    obs = raw[-1][0]
    action, _ = model.predict(obs, deterministic=True)
    expected, _ = model.policy.predict(agent.obs_normalizer.normalize_obs(obs), deterministic=True)
    np.testing.assert_array_equal(action, expected)
    np.testing.assert_array_equal(agent.obs_normalizer.obs_rms.mean, rms.mean)


# ----------------------------------------------------------------------------- (d) a tiny run, checkpoint and resume
UNSUPERVISED = ["agent.unsupervised_steps=128", "agent.unsupervised_epochs=2", "agent.n_epochs=1", "agent.normalize_obs=true",
                "agent.normalize_reward=false", "agent.n_steps=32", "agent.hidden_sizes=[16,16]", "feedback.first_query_step=128",
                "feedback.interval=64"]


def test_tiny_run_with_the_phase_goes_through_rounds_checkpoints_and_resumes_with_its_statistics(tmp_path):
    # 1) stop inside the phase (64 of 128 steps): the checkpoint holds the phase's store and the normaliser
    first = Runner(tiny_ppo(tmp_path, "steps=64", *UNSUPERVISED), tmp_path)
    first.train()
    checkpoint = tmp_path / "checkpoint"
    assert first.model.unsupervised_phase and (checkpoint / STATE_ENTROPY).exists() and (checkpoint / OBS_STATS).exists()
    rms, stored = copy.deepcopy(first.engine.agent.obs_normalizer.obs_rms), first.engine.agent.state_entropy.state_dict()
    assert int(stored["pos"]) == 64
    # 2) resume: the statistics and the store come back; the phase goes on to 128, the first round ends it
    second = Runner(load_run_config(tmp_path, ["steps=320"]), tmp_path, resume=True)
    agent = second.engine.agent
    np.testing.assert_array_equal(agent.obs_normalizer.obs_rms.mean, rms.mean)
    np.testing.assert_array_equal(agent.obs_normalizer.obs_rms.var, rms.var)
    assert agent.obs_normalizer.obs_rms.count == rms.count
    np.testing.assert_array_equal(agent.state_entropy.states[:64], stored["states"])
    assert second.model.obs_normalizer is agent.obs_normalizer and second.model.unsupervised_phase
    assert second.engine.pref_env.venv is agent.obs_normalizer  # under the learned reward and the log, as B-Pref's reward model
    second.train()
    assert second.model.num_timesteps == 320 and second.model.value_reset_step == 128 and not second.model.unsupervised_phase
    assert PreferenceStore(tmp_path / "preferences.sqlite").counts().labeled == 15  # rounds at 128, 192, 256
    assert not (checkpoint / STATE_ENTROPY).exists()
    rms, value = copy.deepcopy(agent.obs_normalizer.obs_rms), second.model.policy.value_net.weight.detach().clone()
    # the logged observations are the normalised ones the learner was trained on
    log = second.engine.log
    assert np.abs(log.arrays["obs"][: log.size]).max() <= 10.0  # VecNormalize's clip_obs: normalised
    # 3) resume after the phase: same statistics, no second reset
    third = Runner(load_run_config(tmp_path, ["steps=384"]), tmp_path, resume=True)
    np.testing.assert_array_equal(third.engine.agent.obs_normalizer.obs_rms.var, rms.var)
    assert third.model.value_reset_step == 128 and not third.model.unsupervised_phase and third.engine.agent.state_entropy.states is None
    assert torch.equal(third.model.policy.value_net.weight, value)
    third.train()
    assert third.model.num_timesteps == 384 and third.model.value_reset_step == 128


# ----------------------------------------------------------------------------- PPO settings of run_PrefPPO.sh
def test_clip_decay_and_gsde_as_bpref(tmp_path):
    """B-Pref's ``clip_range = linear_schedule(clip_init)`` (train_PrefPPO.py L14–31, L121: ``progress_remaining ·
    clip_init``) and ``use_sde`` / ``sde_sample_freq`` (L46–47, L116–119, L171–172), kept by save/load."""
    from pbrl.agents.ppo import make_ppo

    def bpref_linear_schedule(initial_value):
        return lambda progress_remaining: progress_remaining * initial_value

    config = PPOConfig(n_envs=1, n_steps=16, batch_size=16, clip_range=0.4, clip_schedule="linear", use_sde=True, sde_sample_freq=4)
    model = make_ppo(pendulum(), config, seed=0)
    for progress in (1.0, 0.75, 0.3, 0.0):
        assert model.clip_range(progress) == pytest.approx(bpref_linear_schedule(0.4)(progress))
    assert model.use_sde and model.sde_sample_freq == 4 and model.policy.use_sde
    model.learn(32)
    model.save(tmp_path / "agent.zip")
    loaded = PrefPPO.load(tmp_path / "agent.zip", env=pendulum(), device="cpu")
    assert loaded.clip_range(0.5) == pytest.approx(0.2) and loaded.use_sde and loaded.sde_sample_freq == 4
    constant = make_ppo(pendulum(), PPOConfig(n_envs=1, clip_range=0.4), seed=0)
    assert constant.clip_range(0.3) == pytest.approx(0.4) and not constant.use_sde
    with pytest.raises(ValueError, match="agent.clip_schedule"):
        PPOConfig(clip_schedule="cosine")
    with pytest.raises(ValueError, match="agent.sde_sample_freq"):
        PPOConfig(sde_sample_freq=0)
