"""The run configuration: typed, nested dataclasses, loadable from YAML, overridable with
``--set section.field=value``, and dumped — fully resolved — into every run directory.

Every field carries a docstring (shown by ``pbrl config``); unknown keys and bad values
are rejected with the key's full dotted name and what would be valid.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from dataclasses import dataclass, field, fields, is_dataclass, replace
from pathlib import Path
from typing import Any

import yaml

from pbrl.agents.config import PPOConfig, SACConfig
from pbrl.feedback import FeedbackConfig
from pbrl.learners.advantage import AdvantageConfig
from pbrl.learners.bradley_terry import BTEnsembleConfig
from pbrl.learners.cpl import CPLConfig
from pbrl.learners.hindsight_prior import HindsightPriorConfig
from pbrl.learners.ipl import IPLConfig
from pbrl.learners.reed import REEDConfig
from pbrl.query import QueryConfig
from pbrl.teachers.human import HumanTeacherConfig
from pbrl.teachers.synthetic import PRESETS, SyntheticTeacherConfig

METHODS = ("pebble", "pref-ppo", "sac", "cpl", "ipl", "piql", "bc")
REWARD_FREE_METHODS = ("cpl", "ipl", "piql", "bc")  # trained by experiments/reward_free.py, the rest by experiments/train.py


class ConfigError(ValueError):
    """A configuration key or value that pbrl cannot use."""


@dataclass(frozen=True)
class TeacherConfig:
    """Who labels the queries."""

    type: str = "synthetic"
    """Teacher type (registered in experiments/builders.py): 'synthetic' (B-Pref scripted teacher), 'regret' (labels by an expert's optimal advantage; needs teacher.expert), 'human' (people on a labeling web page the run serves; settings under teacher.human)."""
    preset: str = "oracle"
    """B-Pref preset: oracle, stoc, mistake, skip, equal, myopic (knobs below override it)."""
    beta: float | None = None
    """Rationality β (None = from preset; inf = perfectly rational)."""
    gamma: float | None = None
    """Myopia γ (None = from preset)."""
    eps_mistake: float | None = None
    """Mistake probability ε (None = from preset)."""
    eps_skip: float | None = None
    """Skip threshold fraction (None = from preset)."""
    eps_equal: float | None = None
    """Equal threshold fraction (None = from preset)."""
    expert: str | None = None
    """Regret teacher: path to a SAC agent trained on the true reward (checkpoint/agent.zip of a method=sac run)."""
    expert_samples: int = 16
    """Regret teacher: actions sampled from the expert's policy to estimate E_a'~π Q(s, a')."""
    human: HumanTeacherConfig = field(default_factory=HumanTeacherConfig)

    def __post_init__(self) -> None:
        if self.preset not in PRESETS:
            raise ConfigError(f"teacher.preset={self.preset!r} is unknown; choose one of {sorted(PRESETS)}")
        self.synthetic()  # validates the knobs

    def synthetic(self) -> SyntheticTeacherConfig:
        knobs = {f: getattr(self, f) for f in ("beta", "gamma", "eps_mistake", "eps_skip", "eps_equal")}
        return replace(PRESETS[self.preset], **{k: v for k, v in knobs.items() if v is not None})


@dataclass(frozen=True)
class RewardFreeConfig:
    """Reward-free methods (method=cpl, ipl, bc; see experiments/reward_free.py)."""

    dataset: str | None = None
    """Offline: an HDF5 dataset made by `pbrl collect` (steps and eval_interval then count gradient steps); None = online."""
    holdout: float = 0.1
    """Offline: share of the dataset's pairs never trained on, for the held-out preference accuracy."""
    action_noise: float = 0.1
    """Online: std of the Gaussian noise added to the policy's mean action while collecting (normalised actions)."""
    update_interval: int | None = None
    """Online: env steps between extra learner updates after the first feedback round (None = at feedback rounds only)."""

    def __post_init__(self) -> None:
        if not 0.0 <= self.holdout < 1.0 or self.action_noise < 0:
            raise ValueError("reward_free.holdout must be in [0, 1) and reward_free.action_noise ≥ 0")
        if self.update_interval is not None and self.update_interval < 1:
            raise ValueError(f"reward_free.update_interval must be ≥ 1 or None, got {self.update_interval}")


@dataclass(frozen=True)
class TrainConfig:
    """A preference-based RL training run."""

    env: str = "gym:HalfCheetah-v5"
    """Environment id: gym:<MuJoCo-v5 id>, metaworld:<task>-v3 or dmc:<domain>-<task>."""
    method: str = "pebble"
    """pebble (SAC + BT ensemble + unsupervised pre-training), pref-ppo (PPO + BT ensemble), sac (true reward, no feedback); reward-free (experiments/reward_free.py): cpl, ipl, piql (reward model + IQL), bc (behaviour cloning), offline with reward_free.dataset or online."""
    learner: str = "bt"
    """Preference learner (registered in experiments/builders.py): 'bt' (PEBBLE's Bradley–Terry ensemble), 'regret' (optimal advantage Â, Knox et al.), 'hprior' (Hindsight PRIOR), 'reed' (REED's dynamics-aware encoder)."""
    steps: int = 200_000
    """Total environment steps."""
    seed: int = 0
    """Seed of everything (env, agent, learner, teacher, sampling)."""
    run_dir: str | None = None
    """Run directory (default: runs/<env>-<method>-s<seed>-<time>)."""
    max_episode_steps: int | None = None
    """Override the env's episode length."""
    eval_interval: int = 10_000
    """Env steps between deterministic evaluations."""
    eval_episodes: int = 5
    """Episodes per evaluation (0 = no evaluation)."""
    log_interval: int = 1_000
    """Env steps between training-scalar logs."""
    torch_threads: int = 1
    """Torch CPU threads (small MLPs run fastest on one)."""
    progress: bool = True
    """Show a progress bar."""
    teacher: TeacherConfig = field(default_factory=TeacherConfig)
    reward: BTEnsembleConfig = field(default_factory=BTEnsembleConfig)
    regret: AdvantageConfig = field(default_factory=AdvantageConfig)
    hprior: HindsightPriorConfig = field(default_factory=HindsightPriorConfig)
    reed: REEDConfig = field(default_factory=REEDConfig)
    feedback: FeedbackConfig = field(default_factory=FeedbackConfig)
    query: QueryConfig = field(default_factory=QueryConfig)
    sac: SACConfig = field(default_factory=SACConfig)
    ppo: PPOConfig = field(default_factory=PPOConfig)
    cpl: CPLConfig = field(default_factory=CPLConfig)
    ipl: IPLConfig = field(default_factory=IPLConfig)
    reward_free: RewardFreeConfig = field(default_factory=RewardFreeConfig)

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ConfigError(f"method={self.method!r} is unknown; choose one of {list(METHODS)}")
        for name in ("steps", "eval_interval", "log_interval", "torch_threads"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be ≥ 1, got {getattr(self, name)}")
        if self.eval_episodes < 0:
            raise ConfigError(f"eval_episodes must be ≥ 0, got {self.eval_episodes}")
        if self.feedback.absorbing and self.method in REWARD_FREE_METHODS:
            raise ConfigError(
                f"feedback.absorbing pads segments with absorbing steps for reward-based learners; method={self.method} "
                "does not support them: set feedback.absorbing=false"
            )
        if self.sac.recent_fraction is None:  # QPA's hybrid replay comes with its queries unless set explicitly
            object.__setattr__(self, "sac", replace(self.sac, recent_fraction=0.5 if self.query.strategy == "qpa" else 0.0))


# ---------------------------------------------------------------------------- (de)serialisation
def _convert(value: Any, hint: Any, key: str) -> Any:
    """Coerce a YAML/CLI value to the field's declared type, or say why not."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(hint) if a is not type(None)]
        if value is None or (isinstance(value, str) and value.lower() in ("none", "null")):
            return None
        return _convert(value, options[0], key)
    if is_dataclass(hint):
        if not isinstance(value, dict):
            raise ConfigError(f"{key} is a section; give a mapping of its fields, not {value!r}")
        return from_dict(hint, value, prefix=f"{key}.")
    try:
        if hint is bool:
            if isinstance(value, str):
                if value.lower() not in ("true", "false", "yes", "no", "1", "0"):
                    raise ValueError(value)
                return value.lower() in ("true", "yes", "1")
            return bool(value)
        if hint is int:
            number = float(value)
            if not number.is_integer():
                raise ValueError(value)
            return int(number)
        if hint is float:
            return math.inf if str(value).lower() in ("inf", "infinity") else float(value)
        if hint is str:
            return str(value)
        if origin is tuple:
            items = yaml.safe_load(value) if isinstance(value, str) else value
            items = [items] if not isinstance(items, (list, tuple)) else items
            return tuple(_convert(v, typing.get_args(hint)[0], key) for v in items)
    except (TypeError, ValueError):
        raise ConfigError(f"{key}={value!r} is not a valid {getattr(hint, '__name__', hint)}") from None
    return value


def from_dict(cls: type, data: dict[str, Any], prefix: str = "") -> Any:
    """Build dataclass ``cls`` from a (nested) mapping, rejecting unknown keys."""
    hints = typing.get_type_hints(cls)
    names = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(
            f"unknown config key '{prefix}{unknown[0]}'; valid keys{' under ' + prefix.rstrip('.') if prefix else ''}: "
            + ", ".join(sorted(names))
        )
    kwargs = {name: _convert(value, hints[name], f"{prefix}{name}") for name, value in data.items()}
    try:
        return cls(**kwargs)
    except ConfigError:
        raise
    except ValueError as error:
        raise ConfigError(str(error)) from None


def to_dict(config: Any) -> dict[str, Any]:
    """Plain nested dict (tuples as lists, inf as 'inf') for YAML."""

    def clean(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [clean(v) for v in value]
        if isinstance(value, float) and math.isinf(value):
            return "inf"
        return value

    return clean(dataclasses.asdict(config))


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``section.field=value`` strings to a nested mapping (validated later by :func:`from_dict`)."""
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"--set expects key=value (e.g. agent.device=cuda), got {item!r}")
        key, raw = item.split("=", 1)
        parts = key.strip().split(".")
        node = data
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"--set {key}: {part!r} is a value, not a section")
        node[parts[-1]] = raw
    return data


def load_yaml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"config file {path} does not exist")
    data = yaml.safe_load(path.read_text()) or {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping of sections, got {type(data).__name__}")
    return data


def save_yaml(config: TrainConfig, path: str | Path) -> None:
    Path(path).write_text(yaml.safe_dump(to_dict(config), sort_keys=False))


def describe(cls: type = TrainConfig, prefix: str = "") -> list[str]:
    """One line per field: dotted key, default and docstring (for ``pbrl config``)."""
    import ast
    import inspect

    docs: dict[str, str] = {}
    try:
        tree = ast.parse(inspect.getsource(cls))
        body = tree.body[0].body  # type: ignore[attr-defined]
        for node, nxt in zip(body, body[1:]):
            if isinstance(node, ast.AnnAssign) and isinstance(nxt, ast.Expr) and isinstance(nxt.value, ast.Constant):
                docs[node.target.id] = str(nxt.value.value)  # type: ignore[attr-defined]
    except (OSError, TypeError):
        pass
    lines = []
    hints = typing.get_type_hints(cls)
    for f in fields(cls):
        if is_dataclass(hints[f.name]):
            lines += describe(hints[f.name], f"{prefix}{f.name}.")
        else:
            default = f.default if f.default is not dataclasses.MISSING else "…"
            lines.append(f"{prefix}{f.name} = {default!r}    {docs.get(f.name, '')}")
    return lines
