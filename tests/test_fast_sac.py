"""FastSAC: the same update as stable-baselines3's SAC.train, and a drop-in SB3 SAC.

The reference is SB3's own ``SAC.train`` (``stable_baselines3/sac/sac.py``) run for the
same gradient steps from the same weights, optimizer state and batches.
"""

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium import spaces
from stable_baselines3 import SAC
from stable_baselines3.common.type_aliases import ReplayBufferSamples
from stable_baselines3.common.vec_env import DummyVecEnv

from pbrl import cpu_linear
from pbrl.agents.config import SACConfig
from pbrl.agents.device_replay import DeviceReplayBuffer
from pbrl.agents.fast_sac import FastSAC
from pbrl.agents.sac import SACFeedbackHooks, make_sac
from pbrl.learners import BTEnsemble, BTEnsembleConfig

OBS, ACT = 5, 3


class ToyEnv:
    """Spaces only: the update tests never step an env."""

    observation_space = spaces.Box(-np.inf, np.inf, (OBS,), np.float32)
    action_space = spaces.Box(-1, 1, (ACT,), np.float32)


def make_pair(device: str, execution: str, ent_coef="auto_0.1", target_update_interval=1, batch=32, hidden=64):
    class Env(gym.Env):
        observation_space, action_space = ToyEnv.observation_space, ToyEnv.action_space

        def reset(self, seed=None, options=None):
            return np.zeros(OBS, np.float32), {}

        def step(self, action):
            return np.zeros(OBS, np.float32), 0.0, False, False, {}

    kwargs = dict(learning_starts=0, batch_size=batch, ent_coef=ent_coef, target_update_interval=target_update_interval,
                  policy_kwargs={"net_arch": [hidden, hidden]}, seed=0, device=device, buffer_size=100)
    reference = SAC("MlpPolicy", DummyVecEnv([Env]), **kwargs)
    fast = FastSAC("MlpPolicy", DummyVecEnv([Env]), execution=execution, **kwargs)
    fast.policy.load_state_dict(reference.policy.state_dict())
    with torch.no_grad():
        if reference.log_ent_coef is not None:
            fast.log_ent_coef.copy_(reference.log_ent_coef)
    for model in (reference, fast):
        model._setup_learn(10)
    return reference, fast


def fixed_batches(steps: int, batch: int, device: str, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(steps):
        t = lambda *shape: torch.randn(*shape, generator=g)  # noqa: E731
        out.append(ReplayBufferSamples(
            t(batch, OBS).to(device), t(batch, ACT).clamp(-1, 1).to(device), t(batch, OBS).to(device),
            (torch.rand(batch, 1, generator=g) < 0.1).float().to(device), t(batch, 1).to(device),
        ))
    return out


def train_both(reference, fast, steps_per_call: int, calls: int, batch: int, device: str):
    batches = fixed_batches(steps_per_call * calls, batch, device)
    for model in (reference, fast):
        queue = iter(batches)
        model.replay_buffer.sample = lambda *a, _q=queue, **k: next(_q)
        torch.manual_seed(123)  # the actor's noise: same draws in the same order
        for _ in range(calls):
            model.train(steps_per_call, batch)


def assert_same_parameters(reference, fast, atol=1e-5):
    for (name, p), q in zip(reference.policy.named_parameters(), fast.policy.parameters()):
        torch.testing.assert_close(q, p, atol=atol, rtol=0, msg=lambda m, n=name: f"{n}: {m}")
    if reference.log_ent_coef is not None:
        torch.testing.assert_close(fast.log_ent_coef, reference.log_ent_coef, atol=atol, rtol=0)


@pytest.mark.parametrize("ent_coef,target_update_interval,steps", [("auto_0.1", 1, 1), ("auto_0.1", 2, 3), (0.2, 1, 2)])
def test_eager_update_equals_sb3_train(ent_coef, target_update_interval, steps):
    reference, fast = make_pair("cpu", "eager", ent_coef, target_update_interval)
    before = [p.detach().clone() for p in fast.policy.parameters()]
    train_both(reference, fast, steps_per_call=steps, calls=2, batch=32, device="cpu")
    assert any(not torch.equal(b, p) for b, p in zip(before, fast.policy.parameters()))  # it trained at all
    assert_same_parameters(reference, fast)
    assert fast._n_updates == reference._n_updates == 2 * steps
    for key in ("train/critic_loss", "train/actor_loss", "train/ent_coef"):
        assert fast.logger.name_to_value[key] == pytest.approx(reference.logger.name_to_value[key], rel=1e-5, abs=1e-6)


@pytest.mark.skipif(not cpu_linear.onednn_active("cpu"), reason="torch built without oneDNN")
@pytest.mark.parametrize("backend", ["auto", "aten"])
def test_update_at_published_sizes_equals_sb3_train_on_both_cpu_products(backend, monkeypatch):
    """2×256 critics and actor, batch 256 (SB3's MuJoCo SAC): FastSAC's oneDNN products (``auto``: each
    critic on its own) and torch's (``aten``: the twin critic stacked) both give SB3's parameters."""
    cpu_linear.set_backend(backend)
    products = []
    monkeypatch.setattr(cpu_linear, "_product", lambda *a, _f=cpu_linear._product: products.append(1) or _f(*a))
    try:
        reference, fast = make_pair("cpu", "eager", batch=256, hidden=256)
        assert fast._stacked_critics == (backend == "aten")
        train_both(reference, fast, steps_per_call=2, calls=2, batch=256, device="cpu")
    finally:
        cpu_linear.set_backend("auto")
    assert bool(products) == (backend == "auto")  # the path under test was the one taken
    assert_same_parameters(reference, fast)


def test_a_perturbed_update_is_caught():
    """The comparison can fail: one different hyperparameter shows up in the parameters."""
    reference, fast = make_pair("cpu", "eager")
    fast.tau = 0.01
    train_both(reference, fast, steps_per_call=1, calls=1, batch=32, device="cpu")
    with pytest.raises(AssertionError):
        assert_same_parameters(reference, fast, atol=1e-6)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA graph path needs a CUDA device")
def test_cuda_graph_update_equals_sb3_train():
    reference, fast = make_pair("cuda", "graph")
    assert fast.execution == "graph"
    train_both(reference, fast, steps_per_call=1, calls=3, batch=32, device="cuda")
    assert fast._graph is not None  # the steps ran as graph replays
    assert_same_parameters(reference, fast, atol=1e-5)


@pytest.mark.slow
def test_compiled_update_equals_sb3_train():
    reference, fast = make_pair("cpu", "compile")
    train_both(reference, fast, steps_per_call=1, calls=2, batch=32, device="cpu")
    assert fast._compiled is not None
    assert_same_parameters(reference, fast, atol=1e-5)


def test_graph_execution_needs_cuda():
    if torch.cuda.is_available():
        pytest.skip("CUDA present")
    with pytest.raises(ValueError, match="CUDA"):
        make_pair("cpu", "graph")[1].execution


def pendulum_fast(**kwargs) -> FastSAC:
    return FastSAC("MlpPolicy", DummyVecEnv([lambda: gym.make("Pendulum-v1")]), learning_starts=50, batch_size=32,
                   buffer_size=1000, policy_kwargs={"net_arch": [32, 32]}, seed=0, device="cpu", **kwargs)


def test_save_load_and_keep_training(tmp_path):
    model = pendulum_fast()
    assert isinstance(model.replay_buffer, DeviceReplayBuffer)
    model.learn(150)
    model.save(tmp_path / "agent.zip")
    model.save_replay_buffer(tmp_path / "replay.pkl")
    loaded = FastSAC.load(tmp_path / "agent.zip", env=model.get_env(), device="cpu")
    loaded.load_replay_buffer(tmp_path / "replay.pkl")
    assert isinstance(loaded, FastSAC) and loaded.replay_buffer.filled() == 150
    for p, q in zip(model.policy.parameters(), loaded.policy.parameters()):
        assert torch.equal(p, q)
    torch.testing.assert_close(loaded.replay_buffer.observations[:150], model.replay_buffer.observations[:150])
    assert loaded.actor.optimizer.state_dict()["state"][0]["step"] == model.actor.optimizer.state_dict()["state"][0]["step"]
    before = [p.detach().clone() for p in loaded.policy.parameters()]
    loaded.learn(60, reset_num_timesteps=False)
    assert loaded.num_timesteps == 210 and loaded._n_updates > model._n_updates
    assert any(not torch.equal(b, p) for b, p in zip(before, loaded.policy.parameters()))


def test_pebble_relabel_and_critic_reset_through_make_sac():
    venv = DummyVecEnv([lambda: gym.make("Pendulum-v1")])
    config = SACConfig(batch_size=32, buffer_size=1000, learning_starts=50, hidden_sizes=(32, 32), reset_update=5)
    model = make_sac(venv, config, seed=0, algorithm=FastSAC)
    assert isinstance(model, FastSAC) and isinstance(model.replay_buffer, DeviceReplayBuffer)
    assert model.replay_buffer.intrinsic is not None
    model.learn(120)  # pre-training on the state-entropy reward
    learner = BTEnsemble(3, 1, BTEnsembleConfig(hidden_sizes=(16,)), seed=0)
    critic_before = [p.detach().clone() for p in model.critic.parameters()]
    optimizer_before, updates = model.critic.optimizer, model._n_updates

    hooks = SACFeedbackHooks(model, config)
    hooks.after_round(learner)
    buffer = model.replay_buffer
    assert buffer.intrinsic is None
    expected = learner.reward_tensor(buffer.observations[:120, 0], buffer.actions[:120, 0], buffer.next_observations[:120, 0])
    torch.testing.assert_close(buffer.rewards[:120, 0], expected, rtol=1e-5, atol=1e-6)
    assert model.critic.optimizer is not optimizer_before  # the critic was reset…
    assert model.critic.optimizer.defaults.get("fused") is True  # … with FastSAC's optimizer settings kept
    assert model._n_updates == updates + config.reset_update  # … and got its reset updates
    assert all(not torch.equal(b, p) for b, p in zip(critic_before, model.critic.parameters()))
    model.learn(30, reset_num_timesteps=False)
    buffer.relabel_latest(learner)  # what SACFeedbackHooks.fix_latest must call for a device buffer
    row = (buffer.pos - 1) % buffer.buffer_size
    torch.testing.assert_close(buffer.rewards[row, 0], learner.reward_tensor(
        buffer.observations[row], buffer.actions[row], buffer.next_observations[row])[0], rtol=1e-5, atol=1e-6)


TINY_PEBBLE = [
    "env=gym:HalfCheetah-v5", "method=pebble", "agent.impl=fast", "max_episode_steps=100", "steps=500",
    "eval_interval=100000", "eval_episodes=1", "progress=false", "agent.learning_starts=100", "agent.batch_size=32",
    "agent.hidden_sizes=[32,32]", "agent.reset_update=5", "feedback.first_query_step=300", "feedback.interval=100",
    "feedback.per_round=5", "feedback.budget=10", "feedback.segment_length=10", "learner.hidden_sizes=[16,16]",
    "learner.max_epochs=3",
]


def test_pebble_loop_runs_with_agent_impl_fast(tmp_path):
    from pbrl.experiments.config import parse_config
    from pbrl.experiments.runner import Runner

    runner = Runner(parse_config({}, [*TINY_PEBBLE, f"run_dir={tmp_path}"]), tmp_path)
    summary = runner.train()
    model = runner.engine.model
    assert isinstance(model, FastSAC) and isinstance(model.replay_buffer, DeviceReplayBuffer)
    assert model.num_timesteps == 500 and summary["teacher/labeled"] == 10
    assert model.replay_buffer.intrinsic is None  # the first round ended pre-training
    buffer, learner = model.replay_buffer, runner.learner
    expected = learner.reward_tensor(buffer.observations[:500, 0], buffer.actions[:500, 0], buffer.next_observations[:500, 0])
    torch.testing.assert_close(buffer.rewards[:500, 0], expected, rtol=1e-5, atol=1e-5)  # relabeled + latest rows fixed
    with pytest.raises(ValueError, match="no fast version"):
        from pbrl.agents.fast_sac import make_fast_sac
        from pbrl.agents.advantage_policy import GreedyAdvantageSAC

        make_fast_sac(model.get_env(), runner.config.agent, 0, algorithm=GreedyAdvantageSAC)


def test_set_training_mode_sets_every_module_like_sb3_also_after_a_critic_reset():
    """FastSACPolicy's cached-walk set_training_mode leaves the same modes as SB3's recursive one,
    including a critic rebuilt after the list was cached (PEBBLE's reset)."""
    _, fast = make_pair("cpu", "eager")
    policy = fast.policy

    def modes():
        return [m.training for m in (policy, *policy.actor.modules(), *policy.critic.modules(), *policy.critic_target.modules())]

    for mode in (False, True, False):
        policy.set_training_mode(mode)
        assert modes() == [mode] * (1 + len(list(policy.actor.modules())) + len(list(policy.critic.modules()))) + \
            [False] * len(list(policy.critic_target.modules()))  # SB3 leaves the target critic in eval mode
    policy.critic = policy.make_critic(features_extractor=None)  # a fresh critic: every module in training mode
    policy.set_training_mode(False)
    assert not any(m.training for m in policy.critic.modules())


@pytest.mark.parametrize("deterministic", [True, False])
def test_actor_acts_exactly_as_sb3s_actor(deterministic):
    """FastSAC's actor forward (no torch.distributions object per call) gives SB3's actions bit for bit,
    drawing the same noise from the same generator state, and leaves the generator where SB3 leaves it."""
    reference, fast = make_pair("cpu", "eager")
    obs = torch.randn(4, OBS)
    with torch.no_grad():
        torch.manual_seed(7)
        expected, after_sb3 = reference.actor(obs, deterministic=deterministic), torch.rand(1)
        torch.manual_seed(7)
        actual, after_fast = fast.actor(obs, deterministic=deterministic), torch.rand(1)
    assert torch.equal(actual, expected) and torch.equal(after_fast, after_sb3)
