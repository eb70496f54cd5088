"""The built-in learners and teachers, registered by name (loaded by :mod:`pbrl.registry`).

Each ``learner:`` / ``teacher:`` section holds only its type's keys; a teacher's section is its
own config (:class:`~pbrl.teachers.synthetic.SyntheticTeacherConfig`, ``RegretTeacherConfig``,
``HumanTeacherConfig``). Learners that build on
another's settings get one self-contained section: the reward-based variants of PEBBLE's
Bradley–Terry ensemble inherit its keys (``advantage``, ``hprior``, ``reed``: one flat section),
P-IQL is IPL's keys plus a nested ``reward:`` model (the BT ensemble's keys; ``piql-pt``: the
Preference Transformer's), and behaviour cloning keeps only the
policy and optimiser keys it reads. Adding one: a new module with its config dataclass and
class, and one ``register_*`` line below.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from pbrl.learners.advantage import AdvantageConfig, AdvantageLearner
from pbrl.learners.base import RewardLearner
from pbrl.learners.bradley_terry import BTEnsemble, BTEnsembleConfig
from pbrl.learners.cpl import BC_DATA, CPL, BehaviourCloning, CPLConfig
from pbrl.learners.hindsight_prior import HindsightPrior, HindsightPriorConfig
from pbrl.learners.ipl import IPL, IPLConfig
from pbrl.learners.piql import PreferenceIQL
from pbrl.learners.preference_transformer import PreferenceTransformer, PreferenceTransformerConfig
from pbrl.learners.reed import REED, REEDConfig
from pbrl.learners.rime import RIME, RIMEConfig
from pbrl.learners.surf import SURF, SURFConfig
from pbrl.registry import BuildContext, ConfigError, register_learner, register_teacher
from pbrl.teachers.human import HumanTeacher, HumanTeacherConfig
from pbrl.teachers.regret import RegretTeacher, RegretTeacherConfig
from pbrl.teachers.synthetic import SyntheticTeacher, SyntheticTeacherConfig


# ---------------------------------------------------------------------------- learner sections
class _EveryBaseValidates:
    """A section made of several configs (first in the bases): each base's ``__post_init__`` runs."""

    def __post_init__(self) -> None:
        for base in type(self).__mro__[2:]:
            if "__post_init__" in vars(base):
                base.__post_init__(self)


@dataclass(frozen=True)
class AdvantageLearnerConfig(_EveryBaseValidates, BTEnsembleConfig, AdvantageConfig):
    """learner.type=advantage: the optimal advantage Â from the regret likelihood (Knox et al.),
    an ensemble with the Bradley–Terry ensemble's keys plus Â's."""


@dataclass(frozen=True)
class HindsightPriorLearnerConfig(_EveryBaseValidates, BTEnsembleConfig, HindsightPriorConfig):
    """learner.type=hprior: Hindsight PRIOR, the ensemble's keys plus the world model's."""


@dataclass(frozen=True)
class REEDLearnerConfig(_EveryBaseValidates, BTEnsembleConfig, REEDConfig):
    """learner.type=reed: REED, the ensemble's keys plus the dynamics-aware encoder's."""


@dataclass(frozen=True)
class SURFLearnerConfig(_EveryBaseValidates, BTEnsembleConfig, SURFConfig):
    """learner.type=surf: SURF, the ensemble's keys plus pseudo-labeling and temporal cropping."""

    stop_accuracy: float = 1.0
    """Stop a round's epochs early at this training accuracy (1.0: never — the reference trains a fixed number of iterations)."""


@dataclass(frozen=True)
class RIMELearnerConfig(_EveryBaseValidates, BTEnsembleConfig, RIMEConfig):
    """learner.type=rime: RIME, the ensemble's keys plus the trust filter's and the warm start's."""

    max_epochs: int = 50
    """Epochs per round at most (RIME's reward_update = 50)."""
    stop_accuracy: float = 0.98
    """Stop a round early at this training accuracy, after min_epochs (RIME's configs: 0.98)."""


@dataclass(frozen=True)
class PIQLConfig(IPLConfig):
    """learner.type=piql: P-IQL, IQL with IPL's keys on the reward of a Bradley–Terry ensemble."""

    reward: BTEnsembleConfig = field(default_factory=BTEnsembleConfig)
    """The reward model (it runs on learner.device)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.reward.device not in (type(self.reward).device, self.device):
            raise ValueError("learner.reward.device: P-IQL's reward model runs on learner.device; set that one instead")


@dataclass(frozen=True)
class PIQLPTConfig(PIQLConfig):
    """learner.type=piql-pt: P-IQL on the reward of a Preference Transformer (the PT + IQL baseline of Uni-RLHF and the CPL paper)."""

    reward: PreferenceTransformerConfig = field(default_factory=PreferenceTransformerConfig)  # type: ignore[assignment]
    """The reward model (it runs on learner.device); offline, each dataset step's reward is read from its reward.context-step window (EpisodeRewards), elsewhere from a one-step window."""


_CPL = CPLConfig()


@dataclass(frozen=True)
class BCConfig:
    """learner.type=bc: behaviour cloning on the labeled segments (CPL's policy, trained by L_BC alone)."""

    bc_data: str = _CPL.bc_data
    """Segments cloned: 'all', or 'preferred' (the winner of each pair; ties count both) = the CPL paper's SFT."""
    lr: float = _CPL.lr
    """Adam learning rate."""
    batch_size: int = _CPL.batch_size
    """Pairs per minibatch."""
    window: int | None = _CPL.window
    """Cut each segment to a random window of this many steps (None = whole segments)."""
    hidden_sizes: tuple[int, ...] = _CPL.hidden_sizes
    """Hidden widths of the policy MLP."""
    dropout: float = _CPL.dropout
    """Dropout after each hidden layer of the policy."""
    steps_per_update: int = _CPL.steps_per_update
    """Gradient steps per update() call (offline: per evaluation interval; online: per feedback round)."""
    device: str = _CPL.device
    """Torch device ('cpu', 'cuda', 'auto')."""

    def __post_init__(self) -> None:
        if self.bc_data not in BC_DATA:
            raise ValueError(f"learner.bc_data={self.bc_data!r} is unknown; choose one of {list(BC_DATA)}")
        if self.batch_size < 1 or self.steps_per_update < 1:
            raise ValueError("learner.batch_size and learner.steps_per_update must be ≥ 1")

    def as_cpl(self) -> CPLConfig:
        """The CPL config BehaviourCloning runs on: these keys, CPL's defaults for the loss it never computes."""
        return replace(_CPL, bc_data=self.bc_data, lr=self.lr, batch_size=self.batch_size, window=self.window,
                       hidden_sizes=self.hidden_sizes, dropout=self.dropout, steps_per_update=self.steps_per_update,
                       device=self.device)


# ---------------------------------------------------------------------------- factories
def _piql(config: PIQLConfig, ctx: BuildContext, model: type[RewardLearner] = BTEnsemble) -> PreferenceIQL:
    reward = model(ctx.obs_dim, ctx.act_dim, replace(config.reward, device=config.device), ctx.seed)
    return PreferenceIQL(ctx.obs_dim, ctx.act_dim, reward, config, ctx.seed)


def _regret_teacher(config: RegretTeacherConfig, ctx: BuildContext) -> RegretTeacher:
    from pbrl.agents.expert import load_expert, sac_advantage  # SB3 only when this teacher is used

    if not config.expert:
        raise ConfigError("teacher.type=regret needs teacher.expert=<path to a SAC checkpoint/agent.zip> (train one with --method sac)")
    advantage = sac_advantage(load_expert(config.expert), config.expert_samples, seed=ctx.seed)
    return RegretTeacher(advantage, config, name=f"regret:{config.preset}")


def _human_teacher(config: HumanTeacherConfig, ctx: BuildContext) -> HumanTeacher:
    from importlib.util import find_spec

    if not all(find_spec(module) for module in ("fastapi", "uvicorn", "imageio_ffmpeg")):  # the web stack is an extra
        raise ConfigError("teacher.type=human serves a labeling page: pip install -e '.[label]'")
    return HumanTeacher(config, ctx.env_id, budget=ctx.budget)


register_learner("bt", BTEnsembleConfig, lambda c, ctx: BTEnsemble(ctx.obs_dim, ctx.act_dim, c, ctx.seed),
                 "PEBBLE's Bradley–Terry reward ensemble")
register_learner("advantage", AdvantageLearnerConfig, lambda c, ctx: AdvantageLearner(ctx.obs_dim, ctx.act_dim, c, c, ctx.seed),
                 "optimal advantage Â from the regret likelihood (Knox et al.), acted on greedily or used as a reward")
register_learner("hprior", HindsightPriorLearnerConfig,
                 lambda c, ctx: HindsightPrior(ctx.obs_dim, ctx.act_dim, ctx.segment_length, c, c, ctx.seed),
                 "Hindsight PRIOR: return redistribution by a world model's attention")
register_learner("reed", REEDLearnerConfig, lambda c, ctx: REED(ctx.obs_dim, ctx.act_dim, c, c, ctx.seed),
                 "REED: a dynamics-aware (self-predictive) state-action encoder")
register_learner("surf", SURFLearnerConfig, lambda c, ctx: SURF(ctx.obs_dim, ctx.act_dim, c, c, ctx.seed),
                 "SURF: pseudo-labels for confident unlabeled pairs and temporally cropped segments")
register_learner("rime", RIMELearnerConfig, lambda c, ctx: RIME(ctx.obs_dim, ctx.act_dim, c, c, ctx.seed),
                 "RIME: robust to noisy labels (trust filter, label flips, warm start from pre-training)")
register_learner("pt", PreferenceTransformerConfig, lambda c, ctx: PreferenceTransformer(ctx.obs_dim, ctx.act_dim, c, ctx.seed),
                 "Preference Transformer: a causal transformer with preference attention as the reward model")
register_learner("cpl", CPLConfig, lambda c, ctx: CPL(ctx.obs_dim, ctx.act_dim, c, ctx.seed),
                 "Contrastive Preference Learning: the policy from preferences, no reward", reward_free=True)
register_learner("ipl", IPLConfig, lambda c, ctx: IPL(ctx.obs_dim, ctx.act_dim, c, ctx.seed),
                 "Inverse Preference Learning: Q and V from preferences, no reward model", reward_free=True)
register_learner("piql", PIQLConfig, _piql, "P-IQL: a Bradley–Terry reward model, then IQL", reward_free=True)
register_learner("piql-pt", PIQLPTConfig, lambda c, ctx: _piql(c, ctx, PreferenceTransformer),
                 "P-IQL with a Preference Transformer reward model (offline: its windowed reward of each dataset step)", reward_free=True)
register_learner("bc", BCConfig, lambda c, ctx: BehaviourCloning(ctx.obs_dim, ctx.act_dim, c.as_cpl(), ctx.seed),
                 "behaviour cloning on the labeled segments (baseline)", reward_free=True)

register_teacher("synthetic", SyntheticTeacherConfig, lambda c, ctx: SyntheticTeacher(c, name=f"synthetic:{c.preset}"),
                 "B-Pref's scripted teacher (oracle, stoc, mistake, skip, equal, myopic)")
register_teacher("regret", RegretTeacherConfig, _regret_teacher, "labels by a SAC expert's optimal advantage")
register_teacher("human", HumanTeacherConfig, _human_teacher, "people on the labeling web page the run serves")
