"""The run configuration: typed dataclasses, parsed from YAML + ``--set`` overrides by OmegaConf
structured configs, and dumped — resolved, holding only the sections the run uses — into
every run directory.

The algorithm is chosen by the ``type`` of two sections (d3rlpy style): ``learner.type``
(:data:`pbrl.registry.LEARNERS`: bt, advantage, hprior, reed — a reward for an agent — or the
reward-free cpl, ipl, piql, bc, which own their policy) and ``agent.type``
(:data:`pbrl.registry.AGENTS`: sac, ppo; absent for reward-free learners). ``learner: null``
with a SAC agent is the true-reward baseline. ``--method pebble|pref-ppo|sac|cpl|…`` is a
shortcut that expands into those two (:data:`METHODS`). Each typed section holds only its
type's keys; ``teacher``, ``feedback`` and ``query`` exist only where labels are asked, and
``reward_free`` only for reward-free learners. Unknown keys and bad values are refused with
their full dotted name; the rules that span sections live in :func:`_cross_checks`.

Configs written before type tags (top-level ``method`` and ``learner: <name>``, sections
``reward``, ``regret``, ``hprior``, ``reed``, ``sac``, ``ppo``, ``cpl``, ``ipl``) are
converted on load by :func:`convert_legacy_config` (``pbrl config --convert RUN_DIR`` rewrites
a run directory's ``config.yaml``).
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import math
import textwrap
import warnings
from dataclasses import dataclass, fields, is_dataclass, replace
from pathlib import Path
from typing import Any

import yaml
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from pbrl.feedback import FeedbackConfig
from pbrl.learners.ipl import IPLConfig
from pbrl.query import QueryConfig
from pbrl.query.registry import available as query_strategies
from pbrl.registry import AGENTS, LEARNERS, SAC_IMPLS, TEACHERS, ConfigError, Registry
from pbrl.validation import check_section

__all__ = [
    "METHODS", "ConfigError", "RewardFreeConfig", "TrainConfig", "parse_config", "parse_dataclass",
    "to_dict", "load_yaml", "save_yaml", "load_run_config", "convert_run_dir", "convert_legacy_config", "is_legacy", "describe",
]

#: ``--method`` shortcuts: the learner and agent types they stand for (None = no learner / no agent).
METHODS: dict[str, tuple[str | None, str | None]] = {
    "pebble": ("bt", "sac"), "pref-ppo": ("bt", "ppo"), "sac": (None, "sac"),
    "cpl": ("cpl", None), "ipl": ("ipl", None), "piql": ("piql", None), "bc": ("bc", None),
}


@dataclass(frozen=True)
class RewardFreeConfig:
    """Where a reward-free learner's data comes from (the learners with ``reward_free`` in the registry)."""

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
    """A preference-based RL run: top-level settings and the sections its learner and agent use."""

    env: str = "gym:HalfCheetah-v5"
    """Environment id: gym:<MuJoCo-v5 id>, metaworld:<task>-v3 or dmc:<domain>-<task>."""
    steps: int = 200_000
    """Total environment steps (offline reward-free runs: gradient steps)."""
    seed: int = 0
    """Seed of everything (env, agent, learner, teacher, sampling)."""
    run_dir: str | None = None
    """Run directory (default: runs/<env>-<method>-s<seed>-<time>)."""
    max_episode_steps: int | None = None
    """Override the env's episode length."""
    eval_interval: int = 10_000
    """Steps between deterministic evaluations."""
    eval_episodes: int = 5
    """Episodes per evaluation (0 = no evaluation)."""
    log_interval: int = 1_000
    """Env steps between training-scalar logs."""
    checkpoint_interval: int = 10_000
    """Env steps between the checkpoints of an online agent's run, besides the one after every feedback round and
    the last: a kill loses at most this many steps (a SAC baseline, or PEBBLE after its last round, has no rounds to
    checkpoint after). 0 = only after rounds and at the end. Offline learners checkpoint at every evaluation."""
    torch_threads: int = 1
    """Torch CPU threads (small MLPs run fastest on one)."""
    progress: bool = True
    """Show a progress bar."""
    learner: Any = None
    """The preference learner: a section with ``type`` (see pbrl config --describe); null = the true-reward baseline."""
    agent: Any = None
    """The RL agent that acts on the learned reward: a section with ``type`` (sac, ppo); absent for reward-free learners."""
    teacher: Any = None
    """Who labels the queries: a section with ``type`` (synthetic, regret, human); only where labels are asked."""
    feedback: FeedbackConfig | None = None
    """The feedback schedule (only where labels are asked)."""
    query: QueryConfig | None = None
    """Query selection (only where labels are asked)."""
    reward_free: RewardFreeConfig | None = None
    """Data of a reward-free learner: offline dataset or online collection."""

    def __post_init__(self) -> None:
        for name in ("steps", "eval_interval", "log_interval", "torch_threads"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be ≥ 1, got {getattr(self, name)}")
        if self.eval_episodes < 0:
            raise ConfigError(f"eval_episodes must be ≥ 0, got {self.eval_episodes}")
        if self.checkpoint_interval < 0:
            raise ConfigError(f"checkpoint_interval must be ≥ 0 (0: only after feedback rounds and at the end), "
                              f"got {self.checkpoint_interval}")

    # ------------------------------------------------------------------ what the run is
    @property
    def learner_type(self) -> str | None:
        return _type_name(LEARNERS, self.learner)

    @property
    def agent_type(self) -> str | None:
        return _type_name(AGENTS, self.agent)

    @property
    def teacher_type(self) -> str | None:
        return _type_name(TEACHERS, self.teacher)

    @property
    def reward_free_learner(self) -> bool:
        return self.learner is not None and LEARNERS.get(self.learner_type).traits["reward_free"]

    @property
    def offline(self) -> bool:
        return self.reward_free is not None and self.reward_free.dataset is not None

    @property
    def method(self) -> str:
        """A short name of the algorithm (run directories, summaries): pebble, pref-ppo, sac, cpl, hprior-sac, …"""
        for name, types in METHODS.items():
            if types == (self.learner_type, self.agent_type):
                return name
        return f"{self.learner_type}-{self.agent_type}"


_TOP = [f.name for f in fields(TrainConfig) if f.name not in ("learner", "agent", "teacher", "feedback", "query", "reward_free")]


def _type_name(registry: Registry, section: Any) -> str | None:
    if section is None:
        return None
    for name in registry.names():
        if registry.get(name).config is type(section):
            return name
    raise ConfigError(f"{registry.section}: {type(section).__name__} is not a registered {registry.section} config")


# ---------------------------------------------------------------------------- parsing
def _merge(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """The YAML mapping with ``key=value`` overrides applied (plain containers, values not yet typed)."""
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"--set expects key=value (e.g. agent.device=cuda), got {item!r}")
    try:
        merged = OmegaConf.merge(OmegaConf.create(data), OmegaConf.from_dotlist(list(overrides)))
    except OmegaConfBaseException as error:
        raise ConfigError(_message(error)) from None
    return OmegaConf.to_container(merged)  # type: ignore[return-value]


def _message(error: OmegaConfBaseException) -> str:
    """One line naming the full dotted key."""
    text = str(error).splitlines()[0]
    key = getattr(error, "full_key", None)
    if "not in" in text and key:
        return f"unknown config key '{key}' ({text}); see `pbrl config --describe`"
    return f"{key}: {text}" if key and key not in text else text


def _section_type(data: dict[str, Any], name: str, registry: Registry, default: str) -> str:
    section = data.get(name)
    if section is not None and not isinstance(section, dict):
        raise ConfigError(f"{name} is a section; give a mapping with its type and keys, not {section!r}")
    kind = (section or {}).get("type", default)
    registry.get(kind)  # refuses unknown names, listing the registered ones
    return kind


def _expand_method(data: dict[str, Any]) -> dict[str, Any]:
    """``method: X`` → the learner and agent types it stands for (a reward learner already chosen stays)."""
    method = data.pop("method", None)
    if method is None:
        return data
    if method not in METHODS:
        raise ConfigError(f"method={method!r} is unknown; choose one of {list(METHODS)}")
    learner, agent = METHODS[method]
    current = data.get("learner")
    chosen = current.get("type") if isinstance(current, dict) else None
    keeps = method in ("pebble", "pref-ppo") and chosen is not None and not LEARNERS.get(chosen).traits["reward_free"]
    if learner is None:
        data["learner"] = None
    elif not keeps:
        data["learner"] = _retyped(current, learner)
    if agent is not None:  # (a reward-free method keeps any agent section: refused below, as it is not used)
        data["agent"] = _retyped(data.get("agent"), agent)
    return data


def _retyped(section: Any, kind: str) -> dict[str, Any]:
    """``section`` as type ``kind``: its keys kept when it named no other type, else a fresh section."""
    if isinstance(section, dict) and section.get("type", kind) == kind:
        return {**section, "type": kind}
    return {"type": kind}


def parse_config(data: dict[str, Any] | None = None, overrides: list[str] | tuple[str, ...] = ()) -> TrainConfig:
    """A :class:`TrainConfig` from a YAML mapping (this format or the legacy one) and ``key=value`` overrides."""
    data = _merge(data or {}, list(overrides))
    if is_legacy(data):
        data = convert_legacy_config(data)
    data = _expand_method(data)
    unknown = sorted(set(data) - {f.name for f in fields(TrainConfig)})
    if unknown:
        raise ConfigError(f"unknown config key '{unknown[0]}'; valid top-level keys: {', '.join(f.name for f in fields(TrainConfig))}")

    learner_type = None if "learner" in data and data["learner"] is None else _section_type(data, "learner", LEARNERS, "bt")
    reward_free = learner_type is not None and LEARNERS.get(learner_type).traits["reward_free"]
    offline = reward_free and bool((data.get("reward_free") or {}).get("dataset"))
    used = {
        "learner": learner_type is not None,
        "agent": not reward_free,
        "teacher": learner_type is not None and not offline,
        "feedback": learner_type is not None and not offline,
        "query": learner_type is not None and not offline,
        "reward_free": reward_free,
    }
    why = {"agent": f"learner.type={learner_type} acts with its own policy",
           "reward_free": "it holds the data settings of reward-free learners (cpl, ipl, piql, bc)"}
    for section, needed in used.items():
        if not needed and data.get(section) is not None:
            reason = why.get(section, "no labels are asked" if learner_type is None else "an offline run asks no labels")
            raise ConfigError(f"section '{section}' is not used by this run ({reason}); remove it")

    schema = OmegaConf.structured(TrainConfig)
    OmegaConf.set_readonly(schema, False)
    typed = {
        "learner": (LEARNERS, learner_type),
        "agent": (AGENTS, _section_type(data, "agent", AGENTS, "sac") if used["agent"] else None),
        "teacher": (TEACHERS, _section_type(data, "teacher", TEACHERS, "synthetic") if used["teacher"] else None),
    }
    for section, (registry, kind) in typed.items():
        if kind is not None:
            schema[section] = OmegaConf.structured(registry.get(kind).config)
            (data.get(section) or {}).pop("type", None)
    for section, cls in (("feedback", FeedbackConfig), ("query", QueryConfig), ("reward_free", RewardFreeConfig)):
        if used[section]:
            schema[section] = OmegaConf.structured(cls)
    OmegaConf.set_readonly(schema, False)
    data = {k: v for k, v in data.items() if not (k in used and v is None)}
    try:
        config = OmegaConf.to_object(OmegaConf.merge(schema, data))
    except OmegaConfBaseException as error:
        raise ConfigError(_message(error)) from None
    except ConfigError:
        raise
    except ValueError as error:  # a dataclass's own validation
        raise ConfigError(str(error)) from None
    return _cross_checks(_checked(config))


def _checked(config: TrainConfig) -> TrainConfig:
    """``config`` after the value rules every section shares (:mod:`pbrl.validation`) and the names that only
    registries know (query strategies, plug-ins included)."""
    try:
        check_section(config, "")
    except ValueError as error:
        raise ConfigError(str(error)) from None
    if config.query is not None and config.query.strategy not in query_strategies():
        raise ConfigError(f"query.strategy={config.query.strategy!r} is not a registered strategy; "
                          f"choose one of {', '.join(query_strategies())}")
    return config


def _cross_checks(config: TrainConfig) -> TrainConfig:
    """The rules that span sections, in one place (returns the config with derived values filled in)."""
    if config.feedback is not None and config.feedback.absorbing and config.reward_free_learner:
        raise ConfigError(
            f"feedback.absorbing pads segments with absorbing steps for reward-based learners; learner.type={config.learner_type} "
            "does not support them: set feedback.absorbing=false"
        )
    if config.learner_type == "advantage":
        if config.learner.mode == "greedy" and config.agent_type != "sac":
            raise ConfigError(
                "learner.mode=greedy trains a SAC-style actor on Â(s, π(s)) directly, which PPO has no place for: "
                "use agent.type=sac, or learner.mode=reward to give PPO Â as its reward"
            )
        if config.learner.mode == "reward" and not (config.learner.anchor or config.feedback.absorbing):
            warnings.warn(
                "learner.mode=reward with learner.anchor=false and feedback.absorbing=false: Â's unidentified constant "
                "becomes a per-step reward bonus or penalty, so where the env can terminate the agent learns to prolong "
                "or to end episodes (Knox et al. 2024). Pin it with learner.anchor=true or feedback.absorbing=true.",
                stacklevel=3,
            )
    if config.agent_type == "sac":
        agent = config.agent
        if agent.impl not in SAC_IMPLS:
            raise ConfigError(f"agent.impl={agent.impl!r} is unknown; choose one of {SAC_IMPLS.names()}")
        if agent.recent_fraction is None:  # QPA's hybrid replay comes with its queries unless set explicitly
            agent = replace(agent, recent_fraction=0.5 if config.query is not None and config.query.strategy == "qpa" else 0.0)
        if config.learner is None and agent.rune is not None:
            raise ConfigError("agent.rune adds the reward ensemble's std to a learned reward; learner: null has none (drop agent.rune)")
        if config.learner is None and agent.unsupervised_pretraining:  # nothing ends pre-training without feedback
            agent = replace(agent, unsupervised_pretraining=False)
        config = replace(config, agent=agent)
    return config


def budget_warnings(config: TrainConfig, episode_length: int) -> list[str]:
    """Why a run that asks labels cannot use its budget (one line each; [] when it can): no round before the
    end, fewer rounds × per_round than the budget, segments longer than the episodes, or a budget of 0.
    Said at the start of a run, not discovered at its end."""
    fb = config.feedback
    if fb is None:
        return []
    if fb.budget == 0:
        return [f"feedback.budget=0 with learner.type={config.learner_type}: no label will be asked and the learner "
                "never trains; give a budget, or use --method sac for the true-reward baseline"]
    lines = []
    if fb.segment_length > episode_length:
        lines.append(f"feedback.segment_length={fb.segment_length} is longer than the episodes ({episode_length} steps): "
                     "no segment fits, every round will be postponed; lower feedback.segment_length")
    if fb.first_query_step > config.steps:
        lines.append(f"feedback.first_query_step={fb.first_query_step} is after the run's end (steps={config.steps}): "
                     "no label will be asked; lower feedback.first_query_step or raise steps")
        return lines
    rounds = (config.steps - fb.first_query_step) // fb.interval + 1
    if rounds * fb.per_round < fb.budget:
        lines.append(f"feedback.budget={fb.budget} is unreachable: {rounds} rounds (from step {fb.first_query_step}, "
                     f"every {fb.interval} until step {config.steps}) × per_round={fb.per_round} ask "
                     f"{rounds * fb.per_round}; raise feedback.per_round to {math.ceil(fb.budget / rounds)} or lower feedback.interval")
    return lines


def parse_dataclass(cls: type, data: dict[str, Any], overrides: list[str] | tuple[str, ...] = ()) -> Any:
    """Any plain config dataclass (e.g. ``pbrl collect``'s) from a mapping and overrides, validated by OmegaConf."""
    try:
        return OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(cls), _merge(data, list(overrides))))
    except OmegaConfBaseException as error:
        raise ConfigError(_message(error)) from None
    except ConfigError:
        raise
    except ValueError as error:
        raise ConfigError(str(error)) from None


# ---------------------------------------------------------------------------- files
def to_dict(config: Any) -> dict[str, Any]:
    """Plain nested dict for YAML: typed sections with their ``type`` first, unused sections left out."""

    def clean(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [clean(v) for v in value]
        if isinstance(value, float) and math.isinf(value):
            return "inf"
        return value

    if not isinstance(config, TrainConfig):
        return clean(dataclasses.asdict(config))
    out: dict[str, Any] = {name: clean(getattr(config, name)) for name in _TOP}
    kinds = {"learner": config.learner_type, "agent": config.agent_type, "teacher": config.teacher_type}
    for name in ("learner", "agent", "teacher", "feedback", "query", "reward_free"):
        section = getattr(config, name)
        if section is None:
            if name == "learner" and config.agent is not None:
                out[name] = None  # the true-reward baseline says so explicitly
            continue
        out[name] = ({"type": kinds[name]} if name in kinds else {}) | clean(dataclasses.asdict(section))
    return out


def load_yaml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"config file {path} does not exist")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except (yaml.YAMLError, UnicodeDecodeError) as error:
        where = getattr(error, "problem_mark", None)
        at = f" (line {where.line + 1}, column {where.column + 1})" if where else ""
        raise ConfigError(f"config file {path} is not valid YAML{at}: fix or replace it "
                          "(a run directory's config: `pbrl config --config … > config.yaml` writes one)") from None
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping of sections, got {type(data).__name__}")
    return data


def save_yaml(config: TrainConfig, path: str | Path) -> None:
    """Write the resolved config atomically (a kill leaves the old file or the new one, never half)."""
    tmp = Path(path).with_suffix(".yaml.tmp")
    tmp.write_text(yaml.safe_dump(to_dict(config), sort_keys=False))
    tmp.replace(path)


def load_run_config(run_dir: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> TrainConfig:
    """The config of an existing run directory, with overrides (e.g. ``steps=…``); a legacy one is
    converted in place first (:func:`convert_run_dir`)."""
    convert_run_dir(run_dir)
    return parse_config(load_yaml(Path(run_dir) / "config.yaml"), overrides)


def convert_run_dir(run_dir: str | Path) -> bool:
    """Rewrite a run directory's legacy ``config.yaml`` in this format, the original kept as
    ``config.legacy.yaml`` (``pbrl config --convert RUN_DIR``); False when there was nothing to convert."""
    path = Path(run_dir) / "config.yaml"
    if not path.exists():
        raise ConfigError(f"{run_dir} is not a pbrl run directory (no config.yaml)")
    data = load_yaml(path)
    if not is_legacy(data):
        return False
    try:
        config = parse_config(data)
    except ConfigError as error:
        raise ConfigError(f"{path} (written before type-tagged configs) cannot be converted: {error}") from None
    legacy = path.with_name("config.legacy.yaml")
    if not legacy.exists():
        legacy.write_text(path.read_text())
    save_yaml(config, path)
    return True


# ---------------------------------------------------------------------------- legacy configs
_LEGACY_SECTIONS = ("reward", "regret", "hprior", "reed", "sac", "ppo", "cpl", "ipl")
_LEGACY_LEARNERS = {"bt": "bt", "regret": "advantage", "hprior": "hprior", "reed": "reed"}
_LEGACY_EXTRA = {"advantage": "regret", "hprior": "hprior", "reed": "reed"}  # the section each borrowed besides reward


def is_legacy(data: dict[str, Any]) -> bool:
    """Whether ``data`` is in the format before type tags (``learner: <name>`` or a per-method section)."""
    return isinstance(data.get("learner"), str) or any(name in data for name in _LEGACY_SECTIONS)


def convert_legacy_config(old: dict[str, Any]) -> dict[str, Any]:
    """A config in the format before type tags → this format (only the sections its method uses).

    ``method`` and ``learner`` become ``learner.type`` / ``agent.type`` (legacy ``learner=regret``
    is ``learner.type=advantage``); ``reward`` + ``regret|hprior|reed`` merge into one learner
    section; piql gets ``ipl`` + ``reward`` as a nested ``reward:``; bc keeps the ``cpl`` keys it
    reads; ``teacher.human`` becomes the human teacher's section. Partial configs convert too."""
    from pbrl.catalog import BCConfig

    method = old.get("method", "pebble")
    if method not in METHODS:
        raise ConfigError(f"method={method!r} is unknown; choose one of {list(METHODS)}")
    learner_type, agent_type = METHODS[method]
    if learner_type == "bt":
        legacy = old.get("learner", "bt")
        if legacy not in _LEGACY_LEARNERS:
            raise ConfigError(f"learner={legacy!r} is unknown; choose one of {sorted(_LEGACY_LEARNERS)}")
        learner_type = _LEGACY_LEARNERS[legacy]
    new: dict[str, Any] = {k: v for k, v in old.items() if k in _TOP}
    reward = dict(old.get("reward") or {})
    old = {**old, "ipl": _renamed(old.get("ipl") or {}, IPLConfig, {"tau": "polyak"})}
    if learner_type is None:
        new["learner"] = None
    elif learner_type == "piql":
        new["learner"] = {"type": "piql", **(old.get("ipl") or {}), **({"reward": reward} if reward else {})}
    elif learner_type in ("cpl", "ipl"):
        new["learner"] = {"type": learner_type, **(old.get(learner_type) or {})}
    elif learner_type == "bc":
        keep = {f.name for f in fields(BCConfig)}
        new["learner"] = {"type": "bc", **{k: v for k, v in (old.get("cpl") or {}).items() if k in keep}}
    else:
        new["learner"] = {"type": learner_type, **reward, **(old.get(_LEGACY_EXTRA.get(learner_type, "")) or {})}
    if agent_type is not None:
        new["agent"] = {"type": agent_type, **(old.get(agent_type) or {})}
    reward_free = learner_type in ("cpl", "ipl", "piql", "bc")
    offline = reward_free and bool((old.get("reward_free") or {}).get("dataset"))
    if learner_type is not None and not offline:
        teacher = dict(old.get("teacher") or {})
        kind = teacher.pop("type", "synthetic")
        human = teacher.pop("human", None) or {}
        if kind == "human":
            teacher = human
        elif kind == "synthetic":
            teacher = {k: v for k, v in teacher.items() if k not in ("expert", "expert_samples")}
        new["teacher"] = {"type": kind, **teacher}
        for section in ("feedback", "query"):
            if old.get(section):
                new[section] = old[section]
    if reward_free and old.get("reward_free"):
        new["reward_free"] = old["reward_free"]
    return new


def _renamed(section: dict[str, Any], cls: type, renames: dict[str, str]) -> dict[str, Any]:
    """``section`` with the keys ``cls`` no longer has under their new names."""
    names = {f.name for f in fields(cls)}
    return {renames[k] if k not in names and k in renames else k: v for k, v in section.items()}


# ---------------------------------------------------------------------------- describe
def _docstrings(cls: type) -> dict[str, str]:
    """Field name → the docstring under it, through the class's bases."""
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        try:
            body = ast.parse(textwrap.dedent(inspect.getsource(klass))).body[0].body  # type: ignore[attr-defined]
        except (OSError, TypeError, IndexError, AttributeError, SyntaxError):
            continue
        for node, nxt in zip(body, body[1:]):
            if isinstance(node, ast.AnnAssign) and isinstance(nxt, ast.Expr) and isinstance(nxt.value, ast.Constant):
                docs[node.target.id] = str(nxt.value.value)  # type: ignore[attr-defined]
    return docs


def _describe_fields(cls: type, prefix: str) -> list[str]:
    docs, lines = _docstrings(cls), []
    for f in fields(cls):
        if f.default is not dataclasses.MISSING:
            default = f.default
        elif f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
            default = f.default_factory()  # type: ignore[misc]
        else:
            default = None
        if is_dataclass(default):
            lines += _describe_fields(type(default), f"{prefix}{f.name}.")
        else:
            lines.append(f"{prefix}{f.name} = {default!r}    {docs.get(f.name, '')}")
    return lines


def describe() -> list[str]:
    """Every key of every section and every registered type, with its default and meaning (``pbrl config --describe``)."""
    docs = _docstrings(TrainConfig)
    lines = [f"{name} = {getattr(TrainConfig, name)!r}    {docs[name]}" for name in _TOP]
    for section, registry, default in (("learner", LEARNERS, "bt"), ("agent", AGENTS, "sac"), ("teacher", TEACHERS, "synthetic")):
        lines += ["", f"{section}.type = {default!r}    {docs[section]} One of: {', '.join(registry.names())}"]
        for name in registry.names():
            entry = registry.get(name)
            lines += [f"  [{section}.type={name}] {entry.summary}"]
            lines += [f"  {line}" for line in _describe_fields(entry.config, f"{section}.")]
    for section, cls in (("feedback", FeedbackConfig), ("query", QueryConfig), ("reward_free", RewardFreeConfig)):
        lines += ["", f"[{section}] {docs[section]}", *_describe_fields(cls, f"{section}.")]
    return lines
