"""FastSAC's B-Pref settings against B-Pref's own SAC, restated by hand.

Reference: rll-research/BPref @ f3ece2e — ``agent/sac.py`` (``update_critic`` L133–157,
``update_actor_and_alpha`` L227–255, ``update_after_reset`` L277–295, the optimisers L71–83),
``agent/actor.py`` (``TanhTransform`` L10–37, ``SquashedNormal`` L40–54,
``DiagGaussianActor.forward`` L69–83) and ``config/agent/sac.yaml`` (``alpha_lr: 1e-4`` L13,
``log_std_bounds: [-5, 2]`` L40). The restatements below run on copies of FastSAC's own
modules (B-Pref's ``trunk(obs).chunk(2)`` = SB3's ``latent_pi`` then ``mu`` / ``log_std``).

Known differences, each far below the tolerances used and each named where it enters:
SB3's tanh correction ``log(1 − a² + 10⁻⁶)`` (B-Pref: the exact ``2 (log 2 − u − softplus(−2u))``),
SB3's critic loss ``½ Σ_j mse`` (B-Pref: ``Σ_j mse``, the same Adam step up to its ε) and SB3's
α loss ``−log α · (log π + H̄)`` (B-Pref: ``α · (−log π − H̄)``, gradient α × SB3's; Adam
cancels the factor up to α's change within its averaging window).
"""

import copy
import dataclasses
import math

import gymnasium as gym
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from gymnasium import spaces
from stable_baselines3 import SAC
from stable_baselines3.common.type_aliases import ReplayBufferSamples
from stable_baselines3.common.vec_env import DummyVecEnv
from torch.distributions import Normal
from torch.distributions.utils import _standard_normal

from pbrl.agents.config import SACConfig
from pbrl.agents.fast_sac import FastSAC, FastSACPolicy, SquashedLogStdActor, squashed_gaussian_sample
from pbrl.agents.sac import check_saved_bpref_settings, make_sac, reset_critic
from pbrl.experiments.config import ConfigError, parse_config

OBS, ACT, BATCH = 3, 2, 8
LR, ALPHA_LR, BOUNDS = 3e-4, 1e-4, (-5.0, 2.0)


class ToyEnv(gym.Env):
    observation_space = spaces.Box(-np.inf, np.inf, (OBS,), np.float32)
    action_space = spaces.Box(-1, 1, (ACT,), np.float32)

    def __init__(self):
        self.rng = np.random.default_rng(0)

    def reset(self, seed=None, options=None):
        return self.rng.normal(size=OBS).astype(np.float32), {}

    def step(self, action):
        return self.rng.normal(size=OBS).astype(np.float32), float(action.sum()), False, False, {}


def fast_model(alpha_lr=ALPHA_LR, log_std_bounds=BOUNDS, **kwargs) -> FastSAC:
    kwargs = {"learning_starts": 0, "batch_size": BATCH, "buffer_size": 200, "ent_coef": "auto_0.1",
              "target_update_interval": 2, "policy_kwargs": {"net_arch": [16, 16]}, "seed": 0, "device": "cpu", **kwargs}
    return FastSAC("MlpPolicy", DummyVecEnv([ToyEnv]), learning_rate=LR, alpha_lr=alpha_lr, log_std_bounds=log_std_bounds, **kwargs)


def fixed_batches(steps: int, seed: int = 0) -> list[ReplayBufferSamples]:
    g = torch.Generator().manual_seed(seed)
    t = lambda *shape: torch.randn(*shape, generator=g)  # noqa: E731
    return [ReplayBufferSamples(t(BATCH, OBS), t(BATCH, ACT).clamp(-1, 1), t(BATCH, OBS),
                                (torch.rand(BATCH, 1, generator=g) < 0.2).float(), t(BATCH, 1)) for _ in range(steps)]


# ------------------------------------------------------------------ B-Pref, restated
def bpref_actor(actor, obs, bounds):
    """``DiagGaussianActor.forward`` (agent/actor.py L69–77): ``(mu, log_std)`` with log_std squashed into bounds."""
    latent = actor.latent_pi(obs)
    mu, log_std = actor.mu(latent), actor.log_std(latent)  # = self.trunk(obs).chunk(2, dim=-1)
    # constrain log_std inside [log_std_min, log_std_max]
    log_std = torch.tanh(log_std)
    log_std_min, log_std_max = bounds
    log_std = log_std_min + 0.5 * (log_std_max - log_std_min) * (log_std + 1)
    return mu, log_std


def bpref_sample(actor, obs, bounds, noise):
    """``dist = SquashedNormal(mu, std)``; ``a = dist.rsample()`` with ε given; ``dist.log_prob(a).sum(-1, keepdim=True)``:
    ``log N(u; μ, σ) − log|d tanh/du|``, the Jacobian as ``TanhTransform.log_abs_det_jacobian`` (L34–37), u from the cache."""
    mu, log_std = bpref_actor(actor, obs, bounds)
    std = log_std.exp()
    u = mu + noise * std  # Normal.rsample: loc + eps * scale
    log_prob = Normal(mu, std).log_prob(u) - 2.0 * (math.log(2.0) - u - F.softplus(-2.0 * u))
    return torch.tanh(u), log_prob.sum(-1, keepdim=True)


class BPrefSAC:
    """B-Pref's ``SACAgent`` update (agent/sac.py) on copies of FastSAC's actor and critics."""

    def __init__(self, model: FastSAC, actor_lr: float, critic_lr: float, alpha_lr: float, bounds, init_temperature=0.1):
        self.actor, self.critic = copy.deepcopy(model.actor), copy.deepcopy(model.critic)
        self.critic_target = copy.deepcopy(model.critic_target)
        self.bounds, self.discount, self.critic_tau = bounds, model.gamma, model.tau
        self.critic_target_update_frequency = model.target_update_interval
        self.log_alpha = torch.tensor(np.log(init_temperature))  # L65: float64, as B-Pref's
        self.log_alpha.requires_grad = True
        self.target_entropy = -ACT  # L69
        betas = (0.9, 0.999)  # sac.yaml actor_betas, critic_betas, alpha_betas
        self.actor_optimizer = torch.optim.Adam(self.actor.parameters(), lr=actor_lr, betas=betas)  # L72–83
        self.critic_optimizer = torch.optim.Adam(self.critic.parameters(), lr=critic_lr, betas=betas)
        self.log_alpha_optimizer = torch.optim.Adam([self.log_alpha], lr=alpha_lr, betas=betas)

    @property
    def alpha(self):
        return self.log_alpha.exp()

    def update_critic(self, obs, action, reward, next_obs, not_done, noise_next):  # L133–156
        next_action, log_prob = bpref_sample(self.actor, next_obs, self.bounds, noise_next)
        target_Q1, target_Q2 = self.critic_target(next_obs, next_action)
        target_V = torch.min(target_Q1, target_Q2) - self.alpha.detach() * log_prob
        target_Q = reward + (not_done * self.discount * target_V)
        target_Q = target_Q.detach()
        current_Q1, current_Q2 = self.critic(obs, action)
        critic_loss = F.mse_loss(current_Q1, target_Q) + F.mse_loss(current_Q2, target_Q)
        self.critic_optimizer.zero_grad()
        critic_loss.backward()
        self.critic_optimizer.step()

    def update_actor_and_alpha(self, obs, noise_pi):  # L227–255
        action, log_prob = bpref_sample(self.actor, obs, self.bounds, noise_pi)
        actor_Q1, actor_Q2 = self.critic(obs, action)
        actor_Q = torch.min(actor_Q1, actor_Q2)
        actor_loss = (self.alpha.detach() * log_prob - actor_Q).mean()
        self.actor_optimizer.zero_grad()
        actor_loss.backward()
        self.actor_optimizer.step()
        self.log_alpha_optimizer.zero_grad()
        alpha_loss = (self.alpha * (-log_prob - self.target_entropy).detach()).mean()
        alpha_loss.backward()
        self.log_alpha_optimizer.step()

    def update_after_reset(self, batches, noises):  # L277–295 (actor_update_frequency 1, policy_update=True)
        for index, (data, (noise_pi, noise_next)) in enumerate(zip(batches, noises)):
            self.update_critic(data.observations, data.actions, data.rewards, data.next_observations, 1 - data.dones, noise_next)
            self.update_actor_and_alpha(data.observations, noise_pi)
            if index % self.critic_target_update_frequency == 0:  # utils.soft_update_params
                with torch.no_grad():
                    for param, target_param in zip(self.critic.parameters(), self.critic_target.parameters()):
                        target_param.data.copy_(self.critic_tau * param.data + (1 - self.critic_tau) * target_param.data)


def fast_noises(seed: int, steps: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The ε FastSAC draws after ``torch.manual_seed(seed)``: for ``s`` then for ``s'``, per gradient step."""
    torch.manual_seed(seed)
    return [(_standard_normal((BATCH, ACT), dtype=torch.float32, device="cpu"),
             _standard_normal((BATCH, ACT), dtype=torch.float32, device="cpu")) for _ in range(steps)]


def train_fast(model: FastSAC, batches, calls: int, seed: int = 123) -> None:
    queue = iter(batches)
    model.replay_buffer.sample = lambda *a, **k: next(queue)
    model._setup_learn(10)
    torch.manual_seed(seed)
    for _ in range(calls):
        model.train(len(batches) // calls, BATCH)


# ------------------------------------------------------------------ (a) the temperature with alpha_lr
def test_alpha_follows_bprefs_update_with_its_own_learning_rate():
    """Two ``update_after_reset`` calls of 3 steps (B-Pref, alpha_lr 1e-4) vs two FastSAC ``train(3)``
    calls: α (and the networks) agree; with α at the actor's lr (SB3's way) they would not."""
    steps, calls = 6, 2
    batches, noises = fixed_batches(steps), fast_noises(123, steps)
    model = fast_model()
    bpref = BPrefSAC(model, LR, LR, ALPHA_LR, BOUNDS)
    sb3_way = BPrefSAC(model, LR, LR, LR, BOUNDS)  # the same update with α at the actor's lr
    train_fast(model, batches, calls)
    for agent in (bpref, sb3_way):
        for c in range(calls):
            k = steps // calls
            agent.update_after_reset(batches[c * k:(c + 1) * k], noises[c * k:(c + 1) * k])

    alpha_fast = model.log_ent_coef.exp().item()
    alpha_bpref, alpha_sb3_way = bpref.alpha.item(), sb3_way.alpha.item()
    assert model.ent_coef_optimizer.param_groups[0]["lr"] == ALPHA_LR and model.actor.optimizer.param_groups[0]["lr"] == LR
    assert alpha_fast == pytest.approx(alpha_bpref, rel=1e-6, abs=0)  # measured: 1.6e-7 relative (B-Pref's log α is float64)
    assert abs(alpha_sb3_way - alpha_bpref) / alpha_bpref > 1e-3  # α's lr matters here: 6 steps of 2e-4 in log α
    for name, ours, theirs in (("actor", model.actor, bpref.actor), ("critic", model.critic, bpref.critic),
                               ("critic_target", model.critic_target, bpref.critic_target)):
        for p, q in zip(ours.parameters(), theirs.parameters()):
            torch.testing.assert_close(p, q, atol=1e-5, rtol=0, msg=lambda m, n=name: f"{n}: {m}")


# ------------------------------------------------------------------ (b) the squashed log-std
def test_actor_distribution_is_bprefs_squashed_log_std():
    model = fast_model()
    with torch.no_grad():  # spread the raw log-std output so that tanh saturates on some entries
        model.actor.log_std.weight.mul_(20.0)
    obs = torch.randn(BATCH, OBS, generator=torch.Generator().manual_seed(1)) * 2
    noise = torch.randn(BATCH, ACT, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        mean, log_std, _ = model.actor.get_action_dist_params(obs)
        mu, log_std_bpref = bpref_actor(model.actor, obs, BOUNDS)
        torch.testing.assert_close(mean, mu, atol=0, rtol=0)
        torch.testing.assert_close(log_std, log_std_bpref, atol=1e-6, rtol=0)
        assert log_std.min() >= BOUNDS[0] and log_std.max() <= BOUNDS[1]
        raw = model.actor.log_std(model.actor.latent_pi(obs))
        assert (raw.abs() > 2).any() and not torch.allclose(log_std, raw.clamp(-20, 2), atol=0.1)  # not SB3's clamp here

        action, log_prob = squashed_gaussian_sample(model.actor, obs, noise)  # FastSAC's update
        action_bpref, log_prob_bpref = bpref_sample(model.actor, obs, BOUNDS, noise)
        torch.testing.assert_close(action, action_bpref, atol=1e-6, rtol=0)
        u = mu + noise * log_std_bpref.exp()
        sb3_tanh_eps = (torch.log(1 - torch.tanh(u) ** 2 + 1e-6) - 2.0 * (math.log(2.0) - u - F.softplus(-2.0 * u))).sum(-1)
        torch.testing.assert_close(log_prob, log_prob_bpref.squeeze(-1) - sb3_tanh_eps, atol=1e-4, rtol=1e-5)
        # SB3's own action_log_prob through the actor sees the same distribution
        torch.manual_seed(5)
        sb3_action, sb3_log_prob = model.actor.action_log_prob(obs)
        torch.manual_seed(5)
        again = squashed_gaussian_sample(model.actor, obs, _standard_normal((BATCH, ACT), dtype=torch.float32, device="cpu"))
        torch.testing.assert_close(sb3_action, again[0], atol=1e-6, rtol=0)
        torch.testing.assert_close(sb3_log_prob, again[1], atol=1e-4, rtol=1e-5)


def test_default_fast_sac_keeps_sb3s_clamp_and_alpha_lr():
    model = fast_model(alpha_lr=None, log_std_bounds=None)
    assert type(model.policy) is FastSACPolicy and model.actor.log_std_bounds is None
    reference = SAC("MlpPolicy", DummyVecEnv([ToyEnv]), learning_rate=LR, policy_kwargs={"net_arch": [16, 16]}, seed=0)
    assert list(model.policy.state_dict()) == list(reference.policy.state_dict())  # SB3's modules and names
    model.policy.load_state_dict(reference.policy.state_dict())
    with torch.no_grad():
        model.actor.log_std.bias.fill_(-30.0)  # below SB3's LOG_STD_MIN
        reference.actor.log_std.bias.fill_(-30.0)
    obs = torch.randn(4, OBS)
    torch.testing.assert_close(model.actor.get_action_dist_params(obs)[1], reference.actor.get_action_dist_params(obs)[1])
    assert model.actor.get_action_dist_params(obs)[1].min().item() == -20.0
    assert model.ent_coef_optimizer.param_groups[0]["lr"] == LR


# ------------------------------------------------------------------ (c) acting
def test_predict_samples_from_the_squashed_log_std():
    model = fast_model()
    obs = np.random.default_rng(3).normal(size=(1, OBS)).astype(np.float32)
    torch.manual_seed(7)
    action, _ = model.predict(obs, deterministic=False)  # what collection does (SAC._sample_action)
    torch.manual_seed(7)
    noise = _standard_normal((1, ACT), dtype=torch.float32, device="cpu")
    with torch.no_grad():
        mu, log_std = bpref_actor(model.actor, torch.as_tensor(obs), BOUNDS)
        expected = torch.tanh(mu + noise * log_std.exp()).numpy()
        sb3_clamp = torch.tanh(mu + noise * model.actor.log_std(model.actor.latent_pi(torch.as_tensor(obs))).clamp(-20, 2).exp()).numpy()
    np.testing.assert_allclose(action, expected, atol=1e-6)
    assert np.abs(action - sb3_clamp).max() > 1e-3  # the squashing changed the action
    deterministic, _ = model.predict(obs, deterministic=True)  # evaluation: tanh(μ), as B-Pref's act(sample=False)
    np.testing.assert_allclose(deterministic, torch.tanh(mu).numpy(), atol=1e-6)


# ------------------------------------------------------------------ (d) save / load, critic reset
def test_save_load_and_critic_reset_keep_both_settings(tmp_path):
    config = SACConfig(impl="fast", learning_rate=LR, alpha_lr=ALPHA_LR, log_std_bounds=BOUNDS, batch_size=BATCH,
                       buffer_size=200, learning_starts=10, hidden_sizes=(16, 16), unsupervised_pretraining=False)
    from pbrl.registry import SAC_IMPLS

    model = SAC_IMPLS.get("fast").factory(DummyVecEnv([ToyEnv]), config, 0, SAC)  # what SACAgent.build calls
    assert isinstance(model, FastSAC) and model.alpha_lr == ALPHA_LR and model.actor.log_std_bounds == BOUNDS
    model.learn(30)
    assert model.ent_coef_optimizer.param_groups[0]["lr"] == ALPHA_LR and model.critic.optimizer.param_groups[0]["lr"] == LR
    model.save(tmp_path / "agent.zip")
    model.save_replay_buffer(tmp_path / "replay.pkl")
    loaded = FastSAC.load(tmp_path / "agent.zip", env=model.get_env(), device="cpu")
    assert loaded.alpha_lr == ALPHA_LR and isinstance(loaded.actor, SquashedLogStdActor) and loaded.actor.log_std_bounds == BOUNDS
    assert loaded.ent_coef_optimizer.param_groups[0]["lr"] == ALPHA_LR
    obs = np.random.default_rng(4).normal(size=(1, OBS)).astype(np.float32)
    for deterministic in (False, True):
        torch.manual_seed(9)
        a, _ = model.predict(obs, deterministic=deterministic)
        torch.manual_seed(9)
        b, _ = loaded.predict(obs, deterministic=deterministic)
        np.testing.assert_array_equal(a, b)
    loaded.load_replay_buffer(tmp_path / "replay.pkl")
    loaded.learn(5, reset_num_timesteps=False)
    assert loaded.ent_coef_optimizer.param_groups[0]["lr"] == ALPHA_LR and loaded.actor.optimizer.param_groups[0]["lr"] == LR
    reset_critic(loaded, orthogonal=True)  # PEBBLE's critic reset rebuilds the critic optimiser only
    loaded.train(2, BATCH)
    assert loaded.ent_coef_optimizer.param_groups[0]["lr"] == ALPHA_LR and loaded.critic.optimizer.param_groups[0]["lr"] == LR
    # SB3's SAC.load of the same file (pbrl's expert loader) acts with the same squashed actor
    sb3_loaded = SAC.load(tmp_path / "agent.zip", device="cpu")
    assert sb3_loaded.actor.log_std_bounds == BOUNDS
    # resuming (SACAgent.load) with other settings than the checkpoint's is refused, not silently mixed
    check_saved_bpref_settings(loaded, config)
    for other in (dataclasses.replace(config, alpha_lr=None), dataclasses.replace(config, log_std_bounds=(-20.0, 2.0))):
        with pytest.raises(ValueError, match="was trained with agent.alpha_lr=0.0001, agent.log_std_bounds=\\(-5.0, 2.0\\)"):
            check_saved_bpref_settings(loaded, other)


# ------------------------------------------------------------------ (e) impl=sb3 refuses them
def test_sb3_impl_refuses_the_settings_it_cannot_express():
    with pytest.raises(ValueError, match=r"agent.alpha_lr=0.0001 .*agent.impl=fast"):
        SACConfig(alpha_lr=1e-4)
    with pytest.raises(ValueError, match=r"agent.log_std_bounds=\[-5.0, 2.0\] .*agent.impl=fast"):
        SACConfig(log_std_bounds=(-5.0, 2.0))
    SACConfig(alpha_lr=3e-4, learning_rate=3e-4)  # what SB3 does anyway: allowed
    SACConfig(impl="fast", alpha_lr=1e-4, log_std_bounds=(-5.0, 2.0))
    with pytest.raises(ValueError, match="min < max"):
        SACConfig(impl="fast", log_std_bounds=(2.0, -5.0))
    with pytest.raises(ConfigError, match="agent.impl=fast"):
        parse_config({}, ["env=gym:Pendulum-v1", "method=sac", "agent.alpha_lr=1e-4"])
    config = parse_config({}, ["env=gym:Pendulum-v1", "method=sac", "agent.impl=fast", "agent.alpha_lr=1e-4",
                               "agent.log_std_bounds=[-5,2]"]).agent
    assert (config.alpha_lr, config.log_std_bounds) == (1e-4, (-5.0, 2.0))
    # a builder whose SAC cannot take them refuses too (e.g. another agent.impl registered on SB3's SAC)
    sneaky = dataclasses.replace(config, impl="fast")
    with pytest.raises(ValueError, match="agent.alpha_lr needs agent.impl=fast"):
        make_sac(DummyVecEnv([ToyEnv]), sneaky, seed=0, algorithm=SAC)
    with pytest.raises(ValueError, match="agent.log_std_bounds needs agent.impl=fast"):
        make_sac(DummyVecEnv([ToyEnv]), dataclasses.replace(config, alpha_lr=None), seed=0, algorithm=SAC)


# ------------------------------------------------------------------ the reproduce catalogue
def test_catalogue_runs_bprefs_sac_through_fast_sac():
    from pbrl.experiments.reproduce.catalogue import expand, load_catalogue
    from pbrl.experiments.reproduce.translate import nested, translate

    catalogue = load_catalogue()
    seen = set()
    for entry in catalogue.values():
        for spec in expand(entry, seeds=1):
            out, deviations = translate(spec)
            settings = spec.settings
            if spec.method not in ("pebble", "sac"):  # the offline learners have no agent
                continue
            seen.add(spec.entry)
            greedy = spec.learner == "regret"  # learner.type=advantage, mode greedy: GreedyAdvantageSAC (SB3 only)
            assert out["agent.impl"] == ("sb3" if greedy else "fast"), (spec.entry, spec.cell)
            if "diag_gaussian_actor.params.log_std_bounds" in settings:
                if greedy:
                    assert "diag_gaussian_actor.params.log_std_bounds" in deviations and "agent.log_std_bounds" not in out
                else:
                    assert out["agent.log_std_bounds"] == [-5, 2] and "diag_gaussian_actor.params.log_std_bounds" not in deviations
            if "agent.params.alpha_lr" in settings:
                if greedy:
                    assert "agent.params.alpha_lr" in deviations and "agent.alpha_lr" not in out
                else:
                    assert out["agent.alpha_lr"] == 0.0001 and "agent.params.alpha_lr" not in deviations
            config = parse_config(nested(out)).agent  # the refusal on impl=sb3 would raise here
            assert config.impl == out["agent.impl"]
    assert {"pebble-walker-walk", "qpa-door-open", "regret-vs-partial-return", "reed-walker-walk"} <= seen


# ------------------------------------------------------------------ the target-update clock
@pytest.mark.parametrize("clock, expected", [("global", [True, False] * 10), ("per_call", [True] * 20)])
def test_target_update_clock(clock, expected):
    """B-Pref updates the target when ``step % critic_target_update_frequency == 0`` (agent/sac.py L273–275),
    ``step`` the env step, one gradient step each: every 2nd of 20 single-step updates ('global'). SB3's
    ``SAC.train`` counts from 0 in each call, so the same 20 calls update it 20 times ('per_call')."""
    model = fast_model(target_update_clock=clock)
    polyak = []
    real = model._runner

    def recording(constant, batch_size):
        run = real(constant, batch_size)
        return lambda *inputs: (polyak.append(inputs[-1]), run(*inputs))[1]

    model._runner = recording
    train_fast(model, fixed_batches(20), calls=20)
    bpref = [step % model.target_update_interval == 0 for step in range(20)]  # steps counted from the first update
    assert polyak == expected
    assert (polyak == bpref) == (clock == "global")


def test_target_update_clock_global_needs_fast_sac():
    with pytest.raises(ValueError, match="agent.target_update_clock=global .*agent.impl=fast"):
        SACConfig(target_update_clock="global")
    with pytest.raises(ValueError, match="agent.target_update_clock must be"):
        SACConfig(impl="fast", target_update_clock="env")
    assert parse_config({}, ["env=gym:Pendulum-v1", "method=sac", "agent.impl=fast",
                             "agent.target_update_clock=global"]).agent.target_update_clock == "global"
