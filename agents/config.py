"""Agent configurations (stable-baselines3 SAC and PPO): the keys of an ``agent:`` section of each type."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SACConfig:
    """SAC as PEBBLE uses it (defaults: SB3's SAC for MuJoCo with B-Pref's temperature)."""

    impl: str = "sb3"
    """Implementation (registered with pbrl.registry.register_sac_impl): 'sb3' = stable-baselines3's SAC."""
    learning_rate: float = 3e-4
    """Adam learning rate of actor, critic and temperature."""
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
    gradient_steps: int = 1
    """Gradient steps per env step."""
    unsupervised_pretraining: bool = True
    """PEBBLE: explore with the state-entropy reward from learning_starts until the first query."""
    state_entropy_k: int = 5
    """k of the k-NN state-entropy estimate (B-Pref topK)."""
    reset_critic: bool = True
    """PEBBLE: re-initialise the critic after pre-training, before the first learned-reward update."""
    reset_update: int = 100
    """Gradient steps right after the critic reset (B-Pref reset_update); learner.mode=greedy: actor steps on the first Â."""
    device: str = "cpu"
    """Torch device of the agent ('cpu', 'cuda', 'auto' = cuda if available); small MLPs are fastest on one CPU thread."""
    recent_fraction: float | None = None
    """QPA hybrid experience replay: share ω of each batch drawn from the last recent_window transitions (QPA: 0.5); None = 0.5 with query.strategy=qpa, else 0 (uniform replay)."""
    recent_window: int = 10_000
    """Hybrid replay: transitions that count as recent (QPA: the last N = 10 episodes of 1000 steps)."""

    def __post_init__(self) -> None:
        if self.batch_size < 1 or self.buffer_size < 1 or self.learning_starts < 0:
            raise ValueError("agent.batch_size and agent.buffer_size must be ≥ 1 and agent.learning_starts ≥ 0")
        if self.recent_fraction is not None and not 0.0 <= self.recent_fraction <= 1.0:
            raise ValueError(f"agent.recent_fraction must be in [0, 1] or None, got {self.recent_fraction}")
        if self.recent_window < 1:
            raise ValueError(f"agent.recent_window must be ≥ 1, got {self.recent_window}")


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
    """PPO clipping ε."""
    ent_coef: float = 0.0
    """Entropy bonus."""
    hidden_sizes: tuple[int, ...] = (64, 64)
    """Hidden widths of policy and value MLPs."""
    normalize_reward: bool = True
    """Normalise the learned reward with VecNormalize's running return scale."""
    device: str = "cpu"
    """Torch device of the agent ('cpu', 'cuda', 'auto' = cuda if available)."""

    def __post_init__(self) -> None:
        if self.n_envs < 1 or self.n_steps < 1:
            raise ValueError("agent.n_envs and agent.n_steps must be ≥ 1")
