"""Agent configurations (stable-baselines3 SAC and PPO): the keys of an ``agent:`` section of each type."""

from __future__ import annotations

from dataclasses import dataclass

from pbrl.agents.rune import RUNEConfig


@dataclass(frozen=True)
class SACConfig:
    """SAC as PEBBLE uses it (defaults: SB3's SAC for MuJoCo with B-Pref's temperature)."""

    impl: str = "sb3"
    """Implementation (registered with pbrl.registry.register_sac_impl): 'sb3' = stable-baselines3's SAC."""
    learning_rate: float = 3e-4
    """Adam learning rate of actor, critic and (unless agent.alpha_lr is set) temperature."""
    alpha_lr: float | None = None
    """Adam learning rate of the temperature α: B-Pref's alpha_lr (1e-4, config/agent/sac.yaml L13; its own optimiser, agent/sac.py L80–83). None: agent.learning_rate (SB3's SAC, whose train() sets every optimiser's lr from one schedule). A value different from agent.learning_rate needs agent.impl=fast (FastSAC keeps it across train() calls, save/load and PEBBLE's critic reset)."""
    log_std_bounds: tuple[float, float] | None = None
    """B-Pref's actor log-std squashing into [min, max]: log σ = min + ½ (max − min)(tanh x + 1) (agent/actor.py L72–75; [−5, 2] in config/agent/sac.yaml L40), in the update and when acting (predict, collection, evaluation). None: SB3's clamp of log σ to [−20, 2]. Needs agent.impl=fast (FastSAC's policy; saved with the model)."""
    batch_size: int = 256
    """Minibatch size per gradient step."""
    buffer_size: int = 1_000_000
    """Replay capacity (transitions)."""
    learning_starts: int = 1_000
    """Uniform-random steps before learning (B-Pref num_seed_steps)."""
    gamma: float = 0.99
    """Discount factor (learner.type=advantage with learner.mode=greedy: used only by unsupervised pre-training; the greedy actor bootstraps nothing)."""
    tau: float = 0.005
    """Polyak rate of the target critic."""
    hidden_sizes: tuple[int, ...] = (256, 256)
    """Hidden widths of actor and critic MLPs."""
    init_temperature: float = 0.1
    """Initial entropy temperature α (learned; B-Pref init_temperature)."""
    orthogonal_init: bool = False
    """Orthogonal weights (gain 1) and zero biases in actor and critic, also at PEBBLE's critic reset (B-Pref utils.py weight_init L144–149); False: SB3's init."""
    gradient_steps: int = 1
    """Gradient steps per env step."""
    target_update_interval: int = 1
    """Gradient steps between soft target-critic updates (SB3's target_update_interval; B-Pref critic_target_update_frequency = 2, config/agent/sac.yaml L21). How they are counted: agent.target_update_clock."""
    target_update_clock: str = "per_call"
    """How agent.target_update_interval counts: 'per_call' = SB3's SAC.train, which counts gradient steps from 0 in every train() call — with one gradient step per env step the target is then updated at every env step whatever the interval; 'global' (agent.impl=fast) = every interval-th gradient step of the run, B-Pref's `step % critic_target_update_frequency == 0` (agent/sac.py L273–275)."""
    unsupervised_pretraining: bool = True
    """PEBBLE: explore with the state-entropy reward from learning_starts until the first query."""
    state_entropy_k: int = 5
    """k of the k-NN state-entropy estimate (B-Pref topK)."""
    state_entropy_on: str = "obs"
    """State the state-entropy reward scores: 'obs' = s_t (B-Pref agent/sac.py L170), 'next_obs' = s_{t+1} (pbrl's former default)."""
    state_entropy_std: str = "running"
    """Running std that divides PEBBLE's k-NN distances: 'running' = the running std of every distance so far (what B-Pref intends); 'bpref-code' = B-Pref's TorchRunningMeanStd as written (agent/sac.py L51, L176–177; utils.py L211–247, whose mean update mean + delta + n/total, L240, keeps the mean near the latest batch's, so the std is about the within-batch spread of the 1,024 sampled distances)."""
    reset_critic: bool = True
    """PEBBLE: re-initialise the critic at the first learned-reward update, whether or not pre-training ran (B-Pref train_PEBBLE.py L248); False keeps it."""
    reset_update: int = 100
    """Gradient steps right after the critic reset (B-Pref reset_update); learner.mode=greedy: actor steps on the first Â."""
    device: str = "cpu"
    """Torch device of the agent ('cpu', 'cuda', 'auto' = cuda if available); small MLPs are fastest on one CPU thread."""
    recent_fraction: float | None = None
    """QPA hybrid experience replay: share ω of each batch drawn from the last recent_window transitions (QPA: 0.5); None = 0.5 with query.strategy=qpa, else 0 (uniform replay)."""
    recent_window: int | None = None
    """Hybrid replay: transitions (per env) that count as recent; None = the QPA query window, query.qpa_episodes × episode length (QPA's one N for both, train_QPA.py L259)."""
    precision: str = "float32"
    """agent.impl=fast only: 'float32', or 'bfloat16' (opt-in, changes the numbers): the losses' matrix products in bf16 under autocast; parameters and Adam stay float32."""
    rune: RUNEConfig | None = None
    """RUNE's exploration bonus β_t · std_e r̂_e added to the reward after pre-training (rll-research/rune); null = off, a section turns it on (agent.rune={} = the reference's β_0 = 0.05, ρ = 1e-5; keys agent.rune.beta_init, .beta_decay, .schedule)."""

    def __post_init__(self) -> None:
        if self.batch_size < 1 or self.buffer_size < 1 or self.learning_starts < 0:
            raise ValueError("agent.batch_size and agent.buffer_size must be ≥ 1 and agent.learning_starts ≥ 0")
        if self.recent_fraction is not None and not 0.0 <= self.recent_fraction <= 1.0:
            raise ValueError(f"agent.recent_fraction must be in [0, 1] or None, got {self.recent_fraction}")
        if self.recent_window is not None and self.recent_window < 1:
            raise ValueError(f"agent.recent_window must be ≥ 1 or None, got {self.recent_window}")
        if self.target_update_interval < 1:
            raise ValueError(f"agent.target_update_interval must be ≥ 1, got {self.target_update_interval}")
        if self.target_update_clock not in ("per_call", "global"):
            raise ValueError(f"agent.target_update_clock must be 'per_call' (SB3) or 'global' (B-Pref), got {self.target_update_clock!r}")
        if self.impl == "sb3" and self.target_update_clock == "global":
            raise ValueError("agent.target_update_clock=global counts target updates over the run, which SB3's SAC.train cannot express "
                             "(it counts within each train() call): set agent.impl=fast (FastSAC), or agent.target_update_clock=per_call")
        if self.state_entropy_on not in ("obs", "next_obs"):
            raise ValueError(f"agent.state_entropy_on must be 'obs' or 'next_obs', got {self.state_entropy_on!r}")
        if self.state_entropy_std not in ("running", "bpref-code"):
            raise ValueError(f"agent.state_entropy_std must be 'running' or 'bpref-code', got {self.state_entropy_std!r}")
        if self.precision not in ("float32", "bfloat16"):
            raise ValueError(f"agent.precision must be 'float32' or 'bfloat16', got {self.precision!r}")
        if self.alpha_lr is not None and not self.alpha_lr > 0:
            raise ValueError(f"agent.alpha_lr must be > 0 or null, got {self.alpha_lr}")
        if self.log_std_bounds is not None and not self.log_std_bounds[0] < self.log_std_bounds[1]:
            raise ValueError(f"agent.log_std_bounds must be [min, max] with min < max, got {list(self.log_std_bounds)}")
        if self.impl == "sb3" and self.alpha_lr is not None and self.alpha_lr != self.learning_rate:
            raise ValueError(f"agent.alpha_lr={self.alpha_lr} differs from agent.learning_rate={self.learning_rate}, which SB3's SAC "
                             "also uses for α: set agent.impl=fast (FastSAC), or agent.alpha_lr=null")
        if self.impl == "sb3" and self.log_std_bounds is not None:
            raise ValueError(f"agent.log_std_bounds={list(self.log_std_bounds)} is B-Pref's tanh-squashed log-std, which SB3's SAC "
                             "cannot express (it clamps to [−20, 2]): set agent.impl=fast (FastSAC), or agent.log_std_bounds=null")


@dataclass(frozen=True)
class PPOConfig:
    """PPO as PrefPPO uses it (defaults: SB3's PPO for MuJoCo, rl-zoo style)."""

    learning_rate: float = 3e-4
    """Adam learning rate."""
    n_envs: int = 4
    """Parallel environments."""
    n_steps: int = 512
    """Steps per env per rollout."""
    batch_size: int = 64
    """Minibatch size."""
    n_epochs: int = 10
    """Optimisation epochs per rollout."""
    gamma: float = 0.99
    """Discount factor."""
    gae_lambda: float = 0.95
    """GAE λ."""
    clip_range: float = 0.2
    """PPO clipping ε (its initial value under agent.clip_schedule=linear)."""
    clip_schedule: str = "constant"
    """'constant' (SB3's default), or 'linear': ε × the remaining fraction of the run, decaying to 0 — B-Pref's linear_schedule(clip_init) (train_PrefPPO.py L14–31, L121; --clip-init 0.4 in run_PrefPPO.sh)."""
    use_sde: bool = False
    """Generalised state-dependent exploration (SB3's use_sde; B-Pref --use-sde 1, train_PrefPPO.py L46, L116–119, L171)."""
    sde_sample_freq: int = -1
    """With agent.use_sde: a new exploration matrix every this many steps (-1: only at rollout starts, SB3's default; B-Pref --sde-freq 4, L47, L172)."""
    ent_coef: float = 0.0
    """Entropy bonus."""
    hidden_sizes: tuple[int, ...] = (64, 64)
    """Hidden widths of policy and value MLPs."""
    normalize_reward: bool = True
    """Normalise the learned reward with VecNormalize's running return scale (B-Pref: no, norm_reward=False, train_PrefPPO.py L153)."""
    normalize_obs: bool = False
    """VecNormalize of the observations, rewards untouched: B-Pref's --normalize 1 (train_PrefPPO.py L51, L152–153). The policy, the learned reward and the logged segments all get the normalised observations (B-Pref's reward model gets self._last_obs, the VecNormalize output: on_policy_with_reward_algorithm.py L250, L256); the statistics are checkpointed and used, frozen, by evaluation. Default False (SB3's PPO; pbrl before this key); the B-Pref presets set true."""
    unsupervised_steps: int = 0
    """B-Pref's unsupervised phase (--unsuper-step: 32000 in every run_PrefPPO.sh; learn_unsuper, on_policy_with_reward_algorithm.py L610–621): rollouts that start before this many env steps (and before the first feedback round) train on the k-NN state-entropy reward (k = 5) of the original observations (collect_rollouts_unsuper L363–373); when the phase ends the value head is re-initialised, once (policy.reset_value(), L620). Default 0 = no phase (B-Pref's plain learn(); also what PPO on the true reward wants); the B-Pref presets set 32000 with feedback.first_query_step = 32000, so that the first round ends the phase, as in B-Pref."""
    unsupervised_epochs: int = 50
    """PPO epochs per rollout during the unsupervised phase (--unsuper-n-epochs 50, train_PrefPPO.py L53; train_unsuper, ppo_with_reward.py L280); agent.n_epochs after it."""
    state_entropy_std: str = "running"
    """Running std that divides the phase's k-NN distances: 'running' = pbrl's (PEBBLE's) running std of every distance so far; 'bpref-code' = B-Pref's TorchRunningMeanStd as written (utils.py L211–247: unbiased batch variance and the mean update mean + delta + n/total, L240, which drops most of the between-step variance; at 32 envs its std came out ~0.5× pbrl's, so the reward ~2× larger). The as-published preset uses 'bpref-code'."""
    device: str = "cpu"
    """Torch device of the agent ('cpu', 'cuda', 'auto' = cuda if available)."""

    def __post_init__(self) -> None:
        if self.n_envs < 1 or self.n_steps < 1:
            raise ValueError("agent.n_envs and agent.n_steps must be ≥ 1")
        if self.clip_schedule not in ("constant", "linear"):
            raise ValueError(f"agent.clip_schedule must be 'constant' or 'linear' (B-Pref's decay to 0), got {self.clip_schedule!r}")
        if self.sde_sample_freq < -1 or self.sde_sample_freq == 0:
            raise ValueError(f"agent.sde_sample_freq must be -1 (at rollout starts) or ≥ 1, got {self.sde_sample_freq}")
        if self.unsupervised_steps < 0 or self.unsupervised_epochs < 1:
            raise ValueError("agent.unsupervised_steps must be ≥ 0 and agent.unsupervised_epochs ≥ 1")
        if self.state_entropy_std not in ("running", "bpref-code"):
            raise ValueError(f"agent.state_entropy_std must be 'running' or 'bpref-code', got {self.state_entropy_std!r}")
