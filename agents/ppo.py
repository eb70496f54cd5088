"""PrefPPO: stable-baselines3 PPO on the learned reward, as B-Pref's ``train_PrefPPO.py`` runs it.

The learned reward reaches PPO through :class:`~agents.preference_env.PreferenceVecEnv`
(optionally scaled by ``VecNormalize``'s running return statistics, rewards only), and
feedback rounds run at the *start* of a rollout, so every rollout is collected under one
reward function. The env stack, innermost first::

    envs → VecNormalize(obs)        agent.normalize_obs (B-Pref --normalize 1, norm_reward=False)
         → PreferenceVecEnv         learned reward r̂(s_t, a_t) and the transition log, on what the policy sees
         → VecNormalize(reward)     agent.normalize_reward (B-Pref: off)
         → StateEntropyVecEnv       agent.unsupervised_steps > 0: the state-entropy reward during the phase

B-Pref (rll-research/BPref @ f3ece2e) runs ``model.learn(total_timesteps, unsuper_flag=1)``
(``train_PrefPPO.py`` L193), i.e. ``learn_unsuper`` (``stable_baselines3/common/
on_policy_with_reward_algorithm.py`` L590–655): while ``num_timesteps < unsuper_step`` at a
rollout's start (L611) the rollout is collected on the state-entropy reward of the original
(un-normalised) observations (``collect_rollouts_unsuper`` L329–435) and trained for
``unsuper_n_epochs`` epochs (``train_unsuper``, ``ppo/ppo_with_reward.py`` L263–352); at the
first rollout after it, ``learn_reward()`` (the first feedback round) and then
``policy.reset_value()`` (L616–620), which re-initialises the value head's output layer only
(``common/policies.py`` L538–543: orthogonal, gain 1, zero bias; the value MLP, the policy
and the optimiser are kept). :class:`PrefPPO` and :class:`StateEntropyVecEnv` do the same.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import BaseCallback, CallbackList, ConvertCallback
from stable_baselines3.common.vec_env import VecEnv, VecEnvWrapper, VecNormalize

from pbrl.agents.config import PPOConfig
from pbrl.agents.state_entropy import StateEntropyReward
from pbrl.learners.base import PreferenceLearner
from pbrl.registry import BuildContext

REWARD_STATS = "vecnormalize.pkl"
"""The reward normaliser's statistics in a checkpoint (agent.normalize_reward)."""
OBS_STATS = "vecnormalize_obs.pkl"
"""The observation normaliser's statistics in a checkpoint (agent.normalize_obs)."""
STATE_ENTROPY = "state_entropy.npz"
"""The unsupervised phase's stored states and running std, in a checkpoint taken during the phase."""
STATE_ENTROPY_K = 5
"""k of B-Pref's k-NN estimate (``EntReplayBuffer.compute_state_entropy(obs, k=5)``, ``common/buffers.py`` L309; called without k, L365)."""
STATE_ENTROPY_SPARE = 100
"""B-Pref's state store holds ``unsuper_step + 100`` rows (``EntReplayBuffer(self.unsuper_step+100, …)``, L152–160)."""


class PrefPPO(PPO):
    """SB3's PPO with B-Pref's unsupervised phase (``learn_unsuper``) and observation normalisation at ``predict``.

    ``unsupervised_phase`` is True from construction while ``unsupervised_steps > 0`` and ends once
    (:meth:`end_unsupervised_phase`): after the first feedback round (the hooks, B-Pref's order:
    ``learn_reward`` then ``reset_value``), or at the first rollout start at ``num_timesteps ≥
    unsupervised_steps`` when no round came first. The flag and the step of the value reset are saved
    with the model, so a resumed run never resets twice.

    ``predict`` takes the env's *original* observations (evaluation episodes): with ``obs_normalizer``
    set (agent.normalize_obs) it normalises them with the training statistics, without updating them.
    """

    unsupervised_steps: int = 0
    unsupervised_epochs: int = 50
    unsupervised_phase: bool = False
    value_reset_step: int | None = None
    """``num_timesteps`` when the value head was re-initialised (None: not yet / never)."""
    obs_normalizer: VecNormalize | None = None

    def __init__(self, *args: Any, unsupervised_steps: int = 0, unsupervised_epochs: int = 50, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.unsupervised_steps, self.unsupervised_epochs = int(unsupervised_steps), int(unsupervised_epochs)
        self.unsupervised_phase = self.unsupervised_steps > 0
        self.value_reset_step = None

    def _excluded_save_params(self) -> list[str]:
        return [*super()._excluded_save_params(), "obs_normalizer"]

    def _init_callback(self, callback: Any, progress_bar: bool = False) -> BaseCallback:
        """The run's callbacks, then :class:`_UnsupervisedPhaseEnd` (so at a rollout start the feedback round comes first)."""
        if callback is not None and not isinstance(callback, (list, BaseCallback)):
            callback = ConvertCallback(callback)
        parts = [] if callback is None else list(callback) if isinstance(callback, list) else [callback]
        return super()._init_callback(CallbackList([*parts, _UnsupervisedPhaseEnd()]), progress_bar)

    def end_unsupervised_phase(self) -> None:
        """End the phase (no-op when not in it) and re-initialise the value head: B-Pref's ``policy.reset_value()``
        (``common/policies.py`` L538–543): ``value_net.apply(partial(init_weights, gain=1))``."""
        if not self.unsupervised_phase:
            return
        self.unsupervised_phase = False
        self.policy.value_net.apply(partial(self.policy.init_weights, gain=1))
        self.value_reset_step = int(self.num_timesteps)

    def train(self) -> None:
        """SB3's PPO update, with ``unsupervised_epochs`` epochs on a rollout of the phase (B-Pref ``train_unsuper`` L280)."""
        if not self.unsupervised_phase:
            return super().train()
        epochs, self.n_epochs = self.n_epochs, self.unsupervised_epochs
        try:
            super().train()
        finally:
            self.n_epochs = epochs

    def predict(self, observation: Any, state: Any = None, episode_start: Any = None, deterministic: bool = False) -> Any:
        if self.obs_normalizer is not None:
            observation = self.obs_normalizer.normalize_obs(observation)
        return super().predict(observation, state, episode_start, deterministic)


class _UnsupervisedPhaseEnd(BaseCallback):
    """B-Pref L611: a rollout that starts at ``num_timesteps ≥ unsupervised_steps`` is not one of the phase."""

    def _on_rollout_start(self) -> None:
        model = self.model
        if model.unsupervised_phase and model.num_timesteps >= model.unsupervised_steps:
            model.end_unsupervised_phase()

    def _on_step(self) -> bool:
        return True


class StateEntropyVecEnv(VecEnvWrapper):
    """While ``active()``: the reward of step t is B-Pref's state-entropy reward of s_t (``collect_rollouts_unsuper`` L363–373).

    Per step, as B-Pref: the original observations ``s_t`` of all envs are stored first (``add_obs``), then each
    one's distance to its k-th nearest neighbour among every stored state, itself included (k = 5,
    ``compute_state_entropy``, ``common/buffers.py`` L309–330; :func:`pbrl.knn.knn_distance`), updates the running
    std and is divided by it (:class:`~pbrl.agents.state_entropy.StateEntropyReward`). The store is a ring of
    ``capacity`` rows (B-Pref: ``unsuper_step + 100``). ``original`` maps the observations this wrapper sees to
    the original ones (B-Pref ``env.get_original_obs()``; identity without observation normalisation).
    Inactive, it passes the inner reward through and frees its store.
    """

    def __init__(self, venv: VecEnv, capacity: int, original: Callable[[np.ndarray], np.ndarray] | None = None,
                 k: int = STATE_ENTROPY_K, std: str = "running") -> None:
        super().__init__(venv)
        self.capacity = int(capacity)
        self.original = original or (lambda obs: obs)
        self.reward = StateEntropyReward(k, on="obs", std=std)
        self.states: np.ndarray | None = np.zeros((self.capacity, *venv.observation_space.shape), dtype=np.float32)
        self.pos, self.full = 0, False
        self.active: Callable[[], bool] = lambda: True
        """Whether the phase is on (the model's ``unsupervised_phase``; set by :class:`PPOAgent`)."""
        self._current: np.ndarray | None = None

    def reset(self) -> np.ndarray:
        obs = self.venv.reset()
        self._current = np.asarray(self.original(obs), dtype=np.float32)
        return obs

    def step_wait(self):
        obs, rewards, dones, infos = self.venv.step_wait()
        if self.states is not None and self.active():
            rewards = self.intrinsic(self._current)
            self._current = np.asarray(self.original(obs), dtype=np.float32)
        else:
            self.states = None
        return obs, rewards, dones, infos

    def intrinsic(self, states: np.ndarray) -> np.ndarray:
        """Store ``states`` [n, d], then their normalised k-NN distances among all stored states, [n]."""
        n = len(states)
        self.states[(self.pos + np.arange(n)) % self.capacity] = states
        self.full = self.full or self.pos + n >= self.capacity  # B-Pref add_obs: full once next_index ≥ buffer_size
        self.pos = (self.pos + n) % self.capacity
        stored = self.states if self.full else self.states[: self.pos]
        return self.reward(torch.from_numpy(states), torch.from_numpy(stored)).numpy().astype(np.float32)

    def state_dict(self) -> dict[str, np.ndarray]:
        stats = self.reward.stats
        return {"states": self.states if self.full else self.states[: self.pos], "pos": np.array(self.pos),
                "full": np.array(self.full), "stats": np.array([stats.mean, stats.var, stats.count])}

    def load_state_dict(self, state: Any) -> None:
        stored = np.asarray(state["states"], dtype=np.float32)
        self.states[: len(stored)] = stored
        self.pos, self.full = int(state["pos"]), bool(state["full"])
        self.reward.stats.mean, self.reward.stats.var, self.reward.stats.count = (float(v) for v in state["stats"])


def make_ppo(env: VecEnv, config: PPOConfig, seed: int, tensorboard_log: str | None = None) -> PrefPPO:
    return PrefPPO(
        "MlpPolicy",
        env,
        learning_rate=config.learning_rate,
        n_steps=config.n_steps,
        batch_size=config.batch_size,
        n_epochs=config.n_epochs,
        gamma=config.gamma,
        gae_lambda=config.gae_lambda,
        # B-Pref's linear_schedule(clip_init): ε × progress_remaining (train_PrefPPO.py L14–31)
        clip_range=partial(operator.mul, config.clip_range) if config.clip_schedule == "linear" else config.clip_range,
        ent_coef=config.ent_coef,
        use_sde=config.use_sde,
        sde_sample_freq=config.sde_sample_freq,
        policy_kwargs={"net_arch": list(config.hidden_sizes)},
        tensorboard_log=tensorboard_log,
        seed=seed,
        device=config.device,
        verbose=0,
        unsupervised_steps=config.unsupervised_steps,
        unsupervised_epochs=config.unsupervised_epochs,
    )


class PPOFeedbackHooks:
    """After a round: the unsupervised phase (if on) ends and the value head is re-initialised (B-Pref L616–620).
    Nothing else: the reward wrapper already uses the updated learner."""

    def __init__(self, model: PrefPPO | None = None) -> None:
        self.model = model

    def after_round(self, learner) -> None:  # noqa: D102
        if isinstance(self.model, PrefPPO):
            self.model.end_unsupervised_phase()

    def fix_latest(self, learner) -> None:  # noqa: D102
        return None


class PPOAgent:
    """``agent.type=ppo``: PrefPPO — observations normalised (``normalize_obs``), the learned reward scaled by
    ``VecNormalize`` (``normalize_reward``), B-Pref's unsupervised phase (``unsupervised_steps``)."""

    on_policy = True

    def __init__(self, config: PPOConfig, ctx: BuildContext) -> None:
        self.config, self.seed, self.n_envs = config, ctx.seed, config.n_envs
        self.obs_normalizer: VecNormalize | None = None
        self.reward_normalizer: VecNormalize | None = None
        self.state_entropy: StateEntropyVecEnv | None = None

    def wrap_observations(self, env: VecEnv, checkpoint: Path | None) -> VecEnv:
        """The envs as the policy *and the learned reward* see them: B-Pref's ``VecNormalize(env, norm_reward=False)``
        (``train_PrefPPO.py`` L152–153) with agent.normalize_obs, its statistics restored from ``checkpoint``. The
        runner puts it under the :class:`PreferenceVecEnv`, so ``r̂`` and the logged segments get the normalised
        observations, as B-Pref's reward model (``obsact`` from ``self._last_obs``, L250–256; stored by
        ``add_data_batch`` L273 as normalised when collected)."""
        if not self.config.normalize_obs:
            return env
        if checkpoint is not None:
            self.obs_normalizer = VecNormalize.load(str(checkpoint / OBS_STATS), env)
        else:
            self.obs_normalizer = VecNormalize(env, norm_obs=True, norm_reward=False, gamma=self.config.gamma)
        return self.obs_normalizer

    def wrap(self, env: VecEnv, checkpoint: Path | None) -> VecEnv:
        if self.config.normalize_reward:
            if checkpoint is not None:
                env = self.reward_normalizer = VecNormalize.load(str(checkpoint / REWARD_STATS), env)
            else:
                env = self.reward_normalizer = VecNormalize(env, norm_obs=False, norm_reward=True, gamma=self.config.gamma)
        if self.config.unsupervised_steps > 0:
            normalizer = self.obs_normalizer
            original = None if normalizer is None else (lambda obs: normalizer.get_original_obs())
            env = self.state_entropy = StateEntropyVecEnv(env, self.config.unsupervised_steps + STATE_ENTROPY_SPARE, original,
                                                          std=self.config.state_entropy_std)
            if checkpoint is not None and (checkpoint / STATE_ENTROPY).exists():
                with np.load(checkpoint / STATE_ENTROPY) as state:
                    self.state_entropy.load_state_dict(state)
        return env

    def _attach(self, model: PrefPPO) -> PrefPPO:
        model.obs_normalizer = self.obs_normalizer
        if self.state_entropy is not None:
            self.state_entropy.active = lambda: model.unsupervised_phase
            if not model.unsupervised_phase:  # resumed after the phase
                self.state_entropy.states = None
        return model

    def build(self, env: VecEnv, learner: PreferenceLearner | None, steps: int) -> PrefPPO:
        return self._attach(make_ppo(env, self.config, self.seed))

    def load(self, checkpoint: Path, env: VecEnv, learner: PreferenceLearner | None) -> PrefPPO:
        return self._attach(PrefPPO.load(checkpoint / "agent.zip", env=env, device=self.config.device))

    def save(self, model: PPO, checkpoint: Path) -> None:
        model.save(checkpoint / "agent.zip")
        if self.reward_normalizer is not None:
            self.reward_normalizer.save(str(checkpoint / REWARD_STATS))
        if self.obs_normalizer is not None:
            self.obs_normalizer.save(str(checkpoint / OBS_STATS))
        if self.state_entropy is not None and getattr(model, "unsupervised_phase", False):
            np.savez(checkpoint / STATE_ENTROPY, **self.state_entropy.state_dict())

    def hooks(self, model: PPO) -> PPOFeedbackHooks:
        return PPOFeedbackHooks(model)
