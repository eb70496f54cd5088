"""PEBBLE's agent: stable-baselines3 SAC on the learned reward.

PEBBLE (Lee, Smith & Abbeel, 2021) = SAC + unsupervised pre-training + relabeling:

1. ``learning_starts`` uniform-random steps;
2. unsupervised pre-training with the state-entropy reward until the first query;
3. at the first feedback round: relabel the buffer with the learned reward, re-initialise
   the critic (its values were fit to the intrinsic reward), and take ``reset_update``
   gradient steps — also when no pre-training ran, as B-Pref (``train_PEBBLE.py`` L224–255
   resets unconditionally at ``num_seed_steps + num_unsup_steps``);
4. after every later round: relabel the whole buffer.

With QPA's hybrid replay (``agent.recent_fraction > 0``) the recent share comes from the
query window (:func:`pbrl.query.qpa.hybrid_replay_window`) and switches off once the query
budget is spent (:func:`pbrl.query.qpa.hybrid_replay_fraction`; QPA ``train_QPA.py`` L258–262).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import torch
from stable_baselines3 import SAC
from stable_baselines3.common.vec_env import VecEnv

from pbrl.agents.advantage_policy import GreedyAdvantageHooks, GreedyAdvantageSAC
from pbrl.agents.base import FeedbackHooks
from pbrl.agents.config import SACConfig
from pbrl.agents.replay import PreferenceReplayBuffer
from pbrl.agents.rune import RUNEBonus
from pbrl.agents.state_entropy import StateEntropyReward
from pbrl.learners.advantage import AdvantageLearner
from pbrl.learners.base import PreferenceLearner, RewardLearner
from pbrl.query.qpa import hybrid_replay_fraction
from pbrl.registry import SAC_IMPLS, BuildContext


def make_sac(
    env: VecEnv, config: SACConfig, seed: int, tensorboard_log: str | None = None, algorithm: type[SAC] = SAC,
) -> SAC:
    """SB3 SAC (or a subclass, ``algorithm``) with a relabelable replay buffer (and the state-entropy reward switched on if asked).

    ``agent.alpha_lr``, ``agent.log_std_bounds`` and ``agent.target_update_clock=global`` (B-Pref's
    α learning rate, squashed log-std and target-update count) go to an ``algorithm`` that takes
    them (FastSAC); any other refuses them, except
    an ``alpha_lr`` equal to ``learning_rate`` (what SB3 does anyway).
    """
    takes = inspect.signature(algorithm.__init__).parameters
    bpref: dict = {}
    if config.alpha_lr is not None and ("alpha_lr" in takes or config.alpha_lr != config.learning_rate):
        bpref["alpha_lr"] = config.alpha_lr
    if config.log_std_bounds is not None:
        bpref["log_std_bounds"] = tuple(config.log_std_bounds)
    if config.target_update_clock != "per_call":
        bpref["target_update_clock"] = config.target_update_clock
    refused = [key for key in bpref if key not in takes]
    if refused:
        raise ValueError(f"agent.{refused[0]} needs agent.impl=fast (FastSAC); {algorithm.__name__} cannot express it")
    model = algorithm(
        "MlpPolicy",
        env,
        learning_rate=config.learning_rate,
        buffer_size=config.buffer_size,
        learning_starts=config.learning_starts,
        batch_size=config.batch_size,
        tau=config.tau,
        gamma=config.gamma,
        gradient_steps=config.gradient_steps,
        target_update_interval=config.target_update_interval,
        ent_coef=f"auto_{config.init_temperature}",
        replay_buffer_class=PreferenceReplayBuffer,
        policy_kwargs={"net_arch": list(config.hidden_sizes)},
        tensorboard_log=tensorboard_log,
        seed=seed,
        device=config.device,
        verbose=0,
        **bpref,
    )
    if config.precision != "float32":
        if not hasattr(model, "precision"):
            raise ValueError(f"agent.precision={config.precision!r} needs agent.impl=fast (FastSAC); {type(model).__name__} trains in float32")
        model.precision = config.precision
    if config.orthogonal_init:
        for module in (model.actor, model.critic):
            orthogonal_init(module)
        model.critic_target.load_state_dict(model.critic.state_dict())
    if config.unsupervised_pretraining:
        model.replay_buffer.intrinsic = StateEntropyReward(config.state_entropy_k, on=config.state_entropy_on, std=config.state_entropy_std)
    if config.recent_fraction:
        if config.recent_window is None:
            raise ValueError("hybrid replay (agent.recent_fraction > 0) needs agent.recent_window (SACAgent ties it to the query window)")
        model.replay_buffer.configure_hybrid_replay(config.recent_fraction, config.recent_window)
    return model


def orthogonal_init(network: torch.nn.Module) -> None:
    """B-Pref's ``utils.py`` ``weight_init`` (L144–149) on every Linear layer: orthogonal weights (gain 1), zero bias."""
    for module in network.modules():
        if isinstance(module, torch.nn.Linear):
            torch.nn.init.orthogonal_(module.weight.data)
            module.bias.data.fill_(0.0)


def reset_critic(model: SAC, orthogonal: bool = False) -> None:
    """Re-initialise critic and target critic weights (SB3's init, or B-Pref's orthogonal one) and the critic optimiser."""
    for module in model.critic.modules():
        if isinstance(module, torch.nn.Linear):
            module.reset_parameters()
    if orthogonal:
        orthogonal_init(model.critic)
    model.critic_target.load_state_dict(model.critic.state_dict())
    model.critic.optimizer = model.critic.optimizer_class(
        model.critic.parameters(), lr=model.lr_schedule(1.0), **model.critic.optimizer_kwargs
    )


def check_saved_bpref_settings(model: SAC, config: SACConfig, checkpoint: Path | str = "the checkpoint") -> None:
    """Refuse to resume a model whose α learning rate, log-std bounds or target-update clock (saved with it)
    are not the config's: the run would train on with the saved ones while its config names others."""
    saved = (getattr(model, "alpha_lr", None), getattr(model.actor, "log_std_bounds", None),
             getattr(model, "target_update_clock", "per_call"))  # saved before the key existed: SB3's count
    wanted = (config.alpha_lr if hasattr(model, "alpha_lr") else None,  # SB3's SAC: only alpha_lr = learning_rate parses
              None if config.log_std_bounds is None else tuple(float(b) for b in config.log_std_bounds),
              config.target_update_clock)
    if saved != wanted:
        raise ValueError(f"{checkpoint} was trained with agent.alpha_lr={saved[0]}, agent.log_std_bounds={saved[1]}, "
                         f"agent.target_update_clock={saved[2]}; the config says {wanted[0]}, {wanted[1]}, {wanted[2]}: "
                         "resume with the checkpoint's values, or start a new run")


class SACFeedbackHooks:
    """What SAC does after a feedback round (PEBBLE steps 3 and 4, QPA's hybrid replay after the budget)."""

    def __init__(self, model: SAC, config: SACConfig, budget: int | None = None) -> None:
        self.model, self.config, self.budget = model, config, budget
        self.asked: Callable[[], int] | None = None
        """Queries asked so far (the run's ``FeedbackLoop.asked``, set by the engine): QPA's hybrid
        replay returns to uniform once it reaches ``budget``."""

    def after_round(self, learner: PreferenceLearner) -> None:
        buffer: PreferenceReplayBuffer = self.model.replay_buffer
        if buffer.recent_fraction and self.asked is not None and self.budget is not None:
            fraction = hybrid_replay_fraction(buffer.recent_fraction, self.asked(), self.budget)
            buffer.configure_hybrid_replay(fraction, buffer.recent_window)
        if not isinstance(learner, RewardLearner):
            return
        # B-Pref resets at the first reward update whether or not pre-training ran; the flag lives on the
        # model, so it is saved with it and a resumed run does not reset again.
        first = not getattr(self.model, "pebble_critic_reset_done", False)
        self.model.pebble_critic_reset_done = True
        buffer.intrinsic = None
        buffer.relabel(learner)
        if first and self.config.reset_critic:
            reset_critic(self.model, self.config.orthogonal_init)
            if buffer.filled() >= self.model.batch_size:
                self.model.train(gradient_steps=self.config.reset_update, batch_size=self.model.batch_size)

    def fix_latest(self, learner: PreferenceLearner) -> None:
        """Relabel the most recent row (SB3 stores a step's transition after the callback ran)."""
        if isinstance(learner, RewardLearner):
            self.model.replay_buffer.relabel_latest(learner)


class SACAgent:
    """``agent.type=sac``: SAC (the ``agent.impl`` registered in :data:`pbrl.registry.SAC_IMPLS`) with
    PEBBLE's relabeling hooks; with ``learner.type=advantage`` and ``learner.mode=greedy`` the SAC
    whose actor ascends Â directly (:class:`~pbrl.agents.advantage_policy.GreedyAdvantageSAC`)."""

    on_policy = False
    n_envs = 1

    def __init__(self, config: SACConfig, ctx: BuildContext) -> None:
        if config.recent_window is None:  # QPA: one N for the query window and the hybrid replay window
            config = replace(config, recent_window=ctx.hybrid_replay_window or ctx.episode_length)
        self.config, self.seed, self.budget = config, ctx.seed, ctx.budget

    def wrap(self, env: VecEnv, checkpoint: Path | None) -> VecEnv:
        return env

    def _algorithm(self, learner: PreferenceLearner | None) -> type[SAC]:
        greedy = isinstance(learner, AdvantageLearner) and learner.advantage_config.mode == "greedy"
        return GreedyAdvantageSAC if greedy else SAC

    def _attach(self, model: SAC, learner: PreferenceLearner | None) -> SAC:
        if isinstance(model, GreedyAdvantageSAC):  # the learner is not part of the saved agent
            model.advantage = learner
        if self.config.rune is not None:  # RUNE: β_t follows the model's env steps (neither is saved with the buffer)
            if not isinstance(learner, RewardLearner):
                raise ValueError("agent.rune adds the reward ensemble's std to the learned reward: it needs a reward learner")
            model.replay_buffer.attach_rune(RUNEBonus(self.config.rune), learner, lambda: model.num_timesteps)
        return model

    def build(self, env: VecEnv, learner: PreferenceLearner | None, steps: int) -> SAC:
        config = replace(self.config, buffer_size=min(self.config.buffer_size, steps))
        model = SAC_IMPLS.get(config.impl).factory(env, config, self.seed, self._algorithm(learner))
        return self._attach(model, learner)

    def load(self, checkpoint: Path, env: VecEnv, learner: PreferenceLearner | None) -> SAC:
        algorithm = self._algorithm(learner)
        if algorithm is SAC:  # the implementation that built it (agent.impl) restores it
            algorithm = SAC_IMPLS.get(self.config.impl).traits["model_class"] or SAC
        model = algorithm.load(checkpoint / "agent.zip", env=env, device=self.config.device)
        check_saved_bpref_settings(model, self.config, checkpoint)
        model.load_replay_buffer(checkpoint / "replay.pkl")
        return self._attach(model, learner)

    def save(self, model: SAC, checkpoint: Path) -> None:
        model.save(checkpoint / "agent.zip")
        model.save_replay_buffer(checkpoint / "replay.pkl")

    def hooks(self, model: SAC) -> FeedbackHooks:
        return GreedyAdvantageHooks(model, self.config) if isinstance(model, GreedyAdvantageSAC) else SACFeedbackHooks(model, self.config, self.budget)
