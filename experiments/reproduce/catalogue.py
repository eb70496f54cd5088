"""The catalogue of published experiments: one YAML per experiment in this folder, read,
validated and expanded into run specs.

An entry records what a paper's reference code ran, in the reference's own words:

* ``source`` — repository, commit and the files (with the line or section) the settings
  were read from; ``paper`` — the publication.
* ``settings`` — a flat mapping of the reference's keys to the published values
  (``num_unsup_steps: 9000``, ``max_feedback: 1000``, ``agent.params.batch_size: 1024``…).
* ``grid`` — axes, each a mapping ``label → overrides`` (reference keys, or the entry
  fields ``env``, ``reference_env``, ``method``, ``learner``, ``teacher_type``, ``steps``),
  or the name of a shared axis in ``_axes.yaml`` (B-Pref's six teachers, its six query
  strategies). ``published_cells`` says which labels the reference itself ran.
* ``seeds`` (the reference's), ``steps``, the SAC-on-true-reward ``baseline`` that
  normalises scores, the ``published`` reference figures (a number with its source, or
  ``"not retrieved"``) and the known ``differences`` from the reference.

:func:`expand` turns an entry into :class:`RunSpec` s — grid × seeds, plus one baseline
run per env and seed — at a ``scale`` that shrinks steps, labels and every schedule step
together. :func:`translate` maps a spec's reference keys onto pbrl's config keys
(:data:`REFERENCE_KEYS`, the table in this folder's README).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

CATALOGUE_DIR = Path(__file__).resolve().parent
AXES_FILE = "_axes.yaml"
NOT_RETRIEVED = "not retrieved"

REQUIRED = ("name", "title", "paper", "source", "env", "reference_env", "method", "steps", "seeds", "settings")
OPTIONAL = ("learner", "teacher_type", "query", "grid", "published_cells", "baseline", "published", "differences", "notes")
OVERRIDABLE = ("env", "reference_env", "method", "learner", "teacher_type", "query", "steps")
METHODS = ("pebble", "sac", "cpl", "ipl", "piql", "bc")
LEARNERS = ("bt", "reed", "hprior", "regret")
TEACHER_TYPES = ("synthetic", "regret")

# Reference keys that count env (or gradient) steps: scaled with ``steps``.
STEP_KEYS = frozenset({
    "num_train_steps", "replay_buffer_capacity", "num_seed_steps", "num_unsup_steps", "num_interact",
    "eval_frequency",
    # jhejna/cpl and jhejna/inverse-preference-learning (research-lightning): gradient steps
    "trainer_kwargs.total_steps", "trainer_kwargs.eval_freq", "alg_kwargs.bc_steps", "alg_kwargs.bc_all_steps",
    "alg_kwargs.reward_steps", "schedule_kwargs.actor.total_steps", "schedule_kwargs.actor.T_max",
})
# Reference keys that count labels (queries, or labeled segments/comparisons offline): scaled too.
LABEL_KEYS = frozenset({
    "max_feedback", "reward_batch", "reward_train_batch", "preference_dataset_update_size",
    "preference_dataset_capacity", "dataset_kwargs.capacity", "dataset_kwargs.feedback_kwargs.capacity",
})
# Settings a SAC-on-true-reward baseline inherits from its entry (the agent and the step counts).
SAC_PREFIXES = ("agent.params.", "double_q_critic.params.", "diag_gaussian_actor.params.")
SAC_KEYS = frozenset({"num_train_steps", "replay_buffer_capacity", "eval_frequency", "num_eval_episodes", "gradient_update"})


class CatalogueError(ValueError):
    """A catalogue file that does not hold a valid entry."""


@dataclass(frozen=True)
class Entry:
    """One published experiment, as read from its YAML (grid axes resolved)."""

    name: str
    title: str
    paper: str
    source: dict
    env: str
    reference_env: str
    method: str
    steps: int
    seeds: tuple[int, ...]
    settings: dict[str, Any]
    learner: str | None = None
    teacher_type: str = "synthetic"
    query: str | None = None
    grid: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    published_cells: dict[str, list[str]] = field(default_factory=dict)
    baseline: dict | None = None
    published: list[dict] = field(default_factory=list)
    differences: list[str] = field(default_factory=list)
    notes: str = ""
    path: str = ""

    def cells(self) -> list[dict[str, str]]:
        """Every combination of grid labels, axes in file order (one empty cell without a grid)."""
        axes = list(self.grid)
        return [dict(zip(axes, labels)) for labels in itertools.product(*(list(self.grid[a]) for a in axes))]

    def source_line(self) -> str:
        """``repo@commit7: path (where)`` of the first source file, for listings."""
        first = self.source["files"][0]
        return f"{self.source['repo']}@{str(self.source.get('commit', ''))[:7]}: {first['path']} ({first['where']})"


@dataclass(frozen=True)
class RunSpec:
    """One run of an entry: a grid cell (or the baseline) at one seed, at ``scale``."""

    entry: str
    name: str
    role: str  # "method" or "baseline" (SAC on the true reward, the normaliser)
    env: str
    reference_env: str
    method: str
    learner: str | None
    teacher_type: str
    query: str | None
    seed: int
    steps: int
    scale: float
    cell: dict[str, str]
    settings: dict[str, Any]
    published_steps: int
    scaled_keys: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# ----------------------------------------------------------------------------------- loading
def load_axes(directory: Path = CATALOGUE_DIR) -> dict[str, dict]:
    """The shared axes of ``_axes.yaml`` (name → {source, note, values})."""
    path = Path(directory) / AXES_FILE
    return yaml.safe_load(path.read_text()) if path.exists() else {}


def load_catalogue(directory: Path = CATALOGUE_DIR) -> dict[str, Entry]:
    """Every entry of the catalogue, by name, in file-name order; raises on the first invalid file."""
    axes = load_axes(directory)
    entries = {}
    for path in sorted(Path(directory).glob("*.yaml")):
        if path.name.startswith("_"):
            continue
        entry = load_entry(path, axes)
        entries[entry.name] = entry
    return entries


def load_entry(path: Path, axes: dict[str, dict] | None = None) -> Entry:
    """Read and validate one catalogue file."""
    path = Path(path)
    data = yaml.safe_load(path.read_text())
    axes = load_axes(path.parent) if axes is None else axes
    errors = validate(data, axes, expected_name=path.stem)
    if errors:
        raise CatalogueError(f"{path.name}: " + "; ".join(errors))
    grid = {axis: _resolve_axis(value, axes) for axis, value in (data.get("grid") or {}).items()}
    return Entry(
        name=data["name"], title=data["title"], paper=data["paper"], source=data["source"], env=data["env"],
        reference_env=data["reference_env"], method=data["method"], steps=int(data["steps"]),
        seeds=tuple(int(s) for s in data["seeds"]), settings=dict(data["settings"]), learner=data.get("learner"),
        teacher_type=data.get("teacher_type", "synthetic"), query=data.get("query"), grid=grid,
        published_cells=dict(data.get("published_cells") or {}), baseline=data.get("baseline"),
        published=list(data.get("published") or []), differences=list(data.get("differences") or []),
        notes=str(data.get("notes") or ""), path=str(path),
    )


def _resolve_axis(value: Any, axes: dict[str, dict]) -> dict[str, dict[str, Any]]:
    values = axes[value]["values"] if isinstance(value, str) else value
    return {str(label): dict(overrides or {}) for label, overrides in values.items()}


# -------------------------------------------------------------------------------- validation
def _source_errors(source: Any, where: str) -> list[str]:
    if not isinstance(source, dict) or not source.get("repo"):
        return [f"{where} needs a 'repo'"]
    files = source.get("files")
    if not isinstance(files, list) or not files:
        return [f"{where} needs a non-empty 'files' list"]
    return [f"{where}.files[{i}] needs 'path' and 'where' (line, section or script name)"
            for i, f in enumerate(files) if not (isinstance(f, dict) and f.get("path") and f.get("where"))]


def _figure_errors(figure: Any, i: int, grid: dict[str, dict]) -> list[str]:
    where = f"published[{i}]"
    if not isinstance(figure, dict) or not figure.get("metric"):
        return [f"{where} needs a 'metric'"]
    errors = []
    value = figure.get("value")
    if isinstance(value, bool) or not (isinstance(value, (int, float)) or value == NOT_RETRIEVED):
        errors.append(f"{where}.value must be a number or {NOT_RETRIEVED!r}, got {value!r}")
    elif isinstance(value, (int, float)):
        source = figure.get("source")
        if not isinstance(source, str) or not source.strip() or source.strip() == NOT_RETRIEVED:
            errors.append(f"{where}.value {value} needs its 'source' (paper + table/figure, or repo file)")
    for axis, label in (figure.get("cell") or {}).items():
        if axis not in grid or str(label) not in grid[axis]:
            errors.append(f"{where}.cell {axis}={label} is not a grid label")
    return errors


def validate(data: Any, axes: dict[str, dict], expected_name: str | None = None) -> list[str]:
    """Every problem of one entry (an empty list when it is valid)."""
    if not isinstance(data, dict):
        return ["the file must hold a mapping"]
    errors = [f"missing required field '{k}'" for k in REQUIRED if k not in data]
    unknown = sorted(set(data) - set(REQUIRED) - set(OPTIONAL))
    errors += [f"unknown field '{k}'" for k in unknown]
    if errors:
        return errors
    if expected_name is not None and data["name"] != expected_name:
        errors.append(f"name {data['name']!r} must equal the file name {expected_name!r}")
    errors += _source_errors(data["source"], "source")
    if data["method"] not in METHODS:
        errors.append(f"method {data['method']!r} is not one of {METHODS}")
    if data.get("learner") is not None and data["learner"] not in LEARNERS:
        errors.append(f"learner {data['learner']!r} is not one of {LEARNERS}")
    if data.get("teacher_type", "synthetic") not in TEACHER_TYPES:
        errors.append(f"teacher_type {data.get('teacher_type')!r} is not one of {TEACHER_TYPES}")
    if not isinstance(data["steps"], int) or data["steps"] < 1:
        errors.append(f"steps must be a positive integer, got {data['steps']!r}")
    if not isinstance(data["seeds"], list) or not data["seeds"] or not all(isinstance(s, int) for s in data["seeds"]):
        errors.append("seeds must be a non-empty list of integers (the reference's seeds)")
    if not isinstance(data["settings"], dict) or not data["settings"]:
        errors.append("settings must be a non-empty mapping of the reference's keys")
        return errors
    errors += [f"settings.{k}: nested value; flatten it to dotted reference keys" for k, v in data["settings"].items()
               if isinstance(v, dict)]
    grid: dict[str, dict] = {}
    for axis, value in (data.get("grid") or {}).items():
        if isinstance(value, str):
            if value not in axes:
                errors.append(f"grid.{axis}: no shared axis {value!r} in {AXES_FILE}")
                continue
            errors += _source_errors(axes[value].get("source"), f"{AXES_FILE}:{value}.source")
        elif not isinstance(value, dict) or not value:
            errors.append(f"grid.{axis} must be a mapping label → overrides, or a shared axis name")
            continue
        grid[axis] = _resolve_axis(value, axes)
        for label, overrides in grid[axis].items():
            for key, v in overrides.items():
                if isinstance(v, dict):
                    errors.append(f"grid.{axis}.{label}.{key}: nested value; flatten it")
                if key in OVERRIDABLE and key == "method" and v not in METHODS:
                    errors.append(f"grid.{axis}.{label}: method {v!r} is not one of {METHODS}")
                if key in OVERRIDABLE and key == "learner" and v not in LEARNERS:
                    errors.append(f"grid.{axis}.{label}: learner {v!r} is not one of {LEARNERS}")
    for axis, labels in (data.get("published_cells") or {}).items():
        if axis not in grid or not set(map(str, labels)) <= set(grid[axis]):
            errors.append(f"published_cells.{axis} must list labels of grid axis {axis!r}")
    for i, figure in enumerate(data.get("published") or []):
        errors += _figure_errors(figure, i, grid)
    baseline = data.get("baseline")
    if baseline is not None:
        if not isinstance(baseline, dict) or baseline.get("method") != "sac":
            errors.append("baseline must be null or a mapping with method: sac (SAC on the true reward)")
        else:
            errors += _source_errors(baseline.get("source"), "baseline.source")
    # Every run's settings must agree with its steps where the reference states them.
    for cell in [dict(zip(grid, c)) for c in itertools.product(*(list(v) for v in grid.values()))] or [{}]:
        merged = _merge(data, grid, cell)
        for key in ("num_train_steps", "trainer_kwargs.total_steps"):
            if key in merged["settings"] and int(float(merged["settings"][key])) != merged["steps"]:
                errors.append(f"cell {cell}: {key} {merged['settings'][key]} ≠ steps {merged['steps']}")
    return errors


# ---------------------------------------------------------------------------------- expansion
def _merge(data: dict | Entry, grid: dict[str, dict], cell: dict[str, str]) -> dict[str, Any]:
    get = data.get if isinstance(data, dict) else lambda k, d=None: getattr(data, k, d)
    merged = {k: get(k) for k in OVERRIDABLE}
    merged["teacher_type"] = merged["teacher_type"] or "synthetic"
    settings = dict(get("settings"))
    for axis, label in cell.items():
        for key, value in grid[axis][label].items():
            if key in OVERRIDABLE:
                merged[key] = value
            else:
                settings[key] = value
    merged["settings"] = settings
    return merged


def scaled(value: Any, scale: float) -> Any:
    """``max(1, round(value × scale))`` for a count (values given as 1e6 in YAML included)."""
    number = float(value)
    return max(1, int(math.floor(number * scale + 0.5)))


def scale_settings(settings: dict[str, Any], scale: float) -> tuple[dict[str, Any], tuple[str, ...]]:
    """Settings with every step and label count multiplied by ``scale``, and the keys it changed."""
    out, changed = dict(settings), []
    for key, value in settings.items():
        if key in STEP_KEYS or key in LABEL_KEYS:
            if value is None or isinstance(value, bool):
                continue
            out[key] = scaled(value, scale)
            if out[key] != value:
                changed.append(key)
    return out, tuple(changed)


def _seed_list(entry: Entry, seeds: int | list[int] | None) -> list[int]:
    if seeds is None:
        return list(entry.seeds)
    if isinstance(seeds, int):
        if seeds < 1:
            raise ValueError(f"seeds must be ≥ 1, got {seeds}")
        extra = [max(entry.seeds) + 1 + i for i in range(max(0, seeds - len(entry.seeds)))]
        return (list(entry.seeds) + extra)[:seeds]
    return [int(s) for s in seeds]


def expand(entry: Entry, scale: float = 1.0, seeds: int | list[int] | None = None, baseline: bool = True) -> list[RunSpec]:
    """The entry's runs: every grid cell × seed (``seeds``: None = the reference's seeds, N = the
    first N of them, extended past their end with new ones, or an explicit list), then one
    SAC-on-true-reward baseline per (env, steps) and seed. ``scale`` ∈ (0, 1] multiplies the
    steps and every step and label count of the settings (rounded, at least 1)."""
    if not 0.0 < scale <= 1.0:
        raise ValueError(f"scale must be in (0, 1], got {scale}")
    seed_list = _seed_list(entry, seeds)
    specs, envs = [], {}
    for cell in entry.cells():
        merged = _merge(entry, entry.grid, cell)
        settings, changed = scale_settings(merged["settings"], scale)
        steps = scaled(merged["steps"], scale)
        label = ",".join(f"{axis}={value}" for axis, value in cell.items()) or "default"
        envs.setdefault((merged["env"], merged["reference_env"], merged["steps"]), None)
        for seed in seed_list:
            specs.append(RunSpec(
                entry=entry.name, name=f"{label},seed={seed}", role="method", env=merged["env"],
                reference_env=merged["reference_env"], method=merged["method"], learner=merged["learner"],
                teacher_type=merged["teacher_type"], query=merged["query"], seed=seed, steps=steps, scale=scale, cell=dict(cell),
                settings=settings, published_steps=int(merged["steps"]), scaled_keys=changed,
            ))
    if baseline and entry.baseline is not None:
        for env, reference_env, steps in envs:
            inherited = {k: v for k, v in entry.settings.items() if k in SAC_KEYS or k.startswith(SAC_PREFIXES)}
            if "num_train_steps" in inherited:
                inherited["num_train_steps"] = steps
            if "replay_buffer_capacity" in inherited:
                inherited["replay_buffer_capacity"] = steps
            settings, changed = scale_settings({**inherited, **(entry.baseline.get("settings") or {})}, scale)
            for seed in seed_list:
                specs.append(RunSpec(
                    entry=entry.name, name=f"baseline=sac,env={env},seed={seed}", role="baseline", env=env,
                    reference_env=reference_env, method="sac", learner=None, teacher_type="none", query=None, seed=seed,
                    steps=scaled(steps, scale), scale=scale, cell={}, settings=settings, published_steps=int(steps),
                    scaled_keys=changed,
                ))
    return specs


def list_entries(entries: dict[str, Entry] | None = None) -> str:
    """One block per entry (for ``pbrl reproduce --list``): name, title, runs, env, source."""
    entries = load_catalogue() if entries is None else entries
    lines = []
    for entry in entries.values():
        cells = len(entry.cells())
        lines.append(f"{entry.name}: {entry.title}")
        lines.append(f"    env {entry.env} ({entry.reference_env} in the reference), {entry.steps:,} steps, "
                     f"{cells} grid cell{'s' * (cells != 1)} × {len(entry.seeds)} seeds")
        lines.append(f"    source: {entry.source_line()}")
        lines.append(f"    paper: {entry.paper}")
    return "\n".join(lines)


# --------------------------------------------------------------------------------- translation
# Reference key → pbrl dotted key as of the current config (experiments/config.py), and how.
# ``{section}`` is the method's config section (cpl/bc → cpl, ipl/piql → ipl). None: no pbrl
# key; the value is a deviation when it differs from what pbrl does (the note says what that is).
REFERENCE_KEYS: dict[str, tuple[str | None, str]] = {
    # rll-research/BPref train_PEBBLE.py / config/train_PEBBLE.yaml (QPA, RUNE and ml-reed share them)
    "num_train_steps": ("steps", "same"),
    "replay_buffer_capacity": ("sac.buffer_size", "same"),
    "num_seed_steps": ("sac.learning_starts", "same; also first query = num_seed_steps + num_unsup_steps"),
    "num_unsup_steps": ("feedback.first_query_step", "first_query_step = num_seed_steps + num_unsup_steps"),
    "num_interact": ("feedback.interval", "same"),
    "max_feedback": ("feedback.budget", "same"),
    "reward_batch": ("feedback.per_round", "same"),
    "segment": ("feedback.segment_length", "same"),
    "reward_lr": ("reward.lr", "same"),
    "reward_update": ("reward.max_epochs", "same (pbrl may stop a round early at reward.stop_accuracy)"),
    "ensemble_size": ("reward.ensemble_size", "same"),
    "large_batch": ("query.pool_multiplier", "same"),
    "preference_dataset_large_update_size": ("query.pool_multiplier", "ml-reed's name for large_batch"),
    "feed_type": ("query.strategy", "0 uniform, 1 disagreement, 2 entropy, 3 kcenter, 4 kcenter-disagreement, 5 kcenter-entropy"),
    "teacher_beta": ("teacher.beta", "−1 (perfectly rational) → inf"),
    "teacher_gamma": ("teacher.gamma", "same"),
    "teacher_eps_mistake": ("teacher.eps_mistake", "same"),
    "teacher_eps_skip": ("teacher.eps_skip", "same"),
    "teacher_eps_equal": ("teacher.eps_equal", "same"),
    "topK": ("sac.state_entropy_k", "same"),
    "reset_update": ("sac.reset_update", "same"),
    "gradient_update": ("sac.gradient_steps", "same"),
    "eval_frequency": ("eval_interval", "same"),
    "num_eval_episodes": ("eval_episodes", "same"),
    "activation": (None, "pbrl's reward members always end in tanh (B-Pref activation=tanh)"),
    "label_margin": (None, "pbrl: no label smoothing (B-Pref default 0.0)"),
    "reward_schedule": (None, "pbrl: a constant reward_batch per round (B-Pref reward_schedule=0)"),
    "agent.params.actor_lr": ("sac.learning_rate", "pbrl has one learning rate for actor, critic and α"),
    "agent.params.critic_lr": ("sac.learning_rate", "must equal actor_lr (one learning rate in pbrl)"),
    "agent.params.alpha_lr": (None, "pbrl (SB3 SAC) learns α at sac.learning_rate; a deviation where they differ"),
    "agent.params.batch_size": ("sac.batch_size", "same"),
    "agent.params.init_temperature": ("sac.init_temperature", "same"),
    "agent.params.discount": ("sac.gamma", "same"),
    "agent.params.critic_tau": ("sac.tau", "same"),
    "agent.params.critic_target_update_frequency": (None, "SB3 SAC updates the target every gradient step (1)"),
    "agent.params.actor_update_frequency": (None, "SB3 SAC updates the actor every gradient step (1)"),
    "double_q_critic.params.hidden_dim": ("sac.hidden_sizes", "hidden_sizes = [hidden_dim] × hidden_depth"),
    "double_q_critic.params.hidden_depth": ("sac.hidden_sizes", "hidden_sizes = [hidden_dim] × hidden_depth"),
    "diag_gaussian_actor.params.hidden_dim": ("sac.hidden_sizes", "pbrl: actor and critic share hidden_sizes"),
    "diag_gaussian_actor.params.hidden_depth": ("sac.hidden_sizes", "pbrl: actor and critic share hidden_sizes"),
    "diag_gaussian_actor.params.log_std_bounds": (None, "SB3's squashed Gaussian clips log σ to [−20, 2]"),
    # huxiao09/QPA train_QPA.py
    "max_reward_buffer_size": ("query.qpa_episodes", "same (episodes in the policy-aligned buffer)"),
    "her_ratio": ("sac.recent_fraction", "share of each SAC batch from the recent transitions"),
    "data_aug_ratio": (None, "QPA's temporal data augmentation of labeled pairs: not in the current code"),
    "explore": (None, "QPA explore=false: plain uniform draws from the policy-aligned buffer (pbrl's qpa)"),
    # apple/ml-reed train_REED.yaml / train_PEBBLE.yaml / run_preference_experiment.py
    "segment_size": ("feedback.segment_length", "same"),
    "reward_train_batch": ("reward.batch_size", "ml-reed: also the queries per round (= max_feedback / 10 on DMC)"),
    "preference_dataset_update_size": ("feedback.per_round", "same"),
    "preference_dataset_capacity": (None, "pbrl keeps every label (ml-reed: capacity = max_feedback)"),
    "reward_hidden_embed_dim": ("reward.hidden_sizes", "hidden_sizes = [dim] × reward_num_hidden_layers"),
    "reward_num_hidden_layers": ("reward.hidden_sizes", "hidden_sizes = [dim] × layers"),
    "reward_state_embed_dim": ("reed.state_embed", "same"),
    "reward_action_embed_dim": ("reed.action_embed", "same"),
    "self_future_consistency_lr": ("reed.sfc_lr", "same"),
    "self_future_consistency_optimizer": ("reed.sfc_optimizer", "same"),
    "self_future_consistency_epochs": ("reed.sfc_epochs", "same"),
    "self_future_consistency_batch": ("reed.sfc_batch", "same"),
    "self_future_consistency_comparison_hidden_size": ("reed.comparison_dim", "same"),
    "self_future_consistency_projection_size": (None, "pbrl projects to reed.comparison_dim (no separate projection size)"),
    "sfc_train_interval": ("reed.sfc_interval", "same"),
    "freeze_pretrained_parameters": ("reed.freeze", "same"),
    "training_split_size": ("reed.sfc_holdout", "sfc_holdout = 1 − training_split_size"),
    "contrastive_sfc": (None, "pbrl's REED is the SimSiam (distillation) variant: contrastive_sfc=false only"),
    "self_future_consistency_pretrain": (None, "pbrl alternates SFC then preference epochs (ml-reed default true)"),
    "joint_learning": (None, "pbrl: no joint SFC+preference epochs (ml-reed default false)"),
    "action_repeat": (None, "pbrl repeats no actions (ml-reed: 1 on DMC, 5 on MetaWorld)"),
    # jhejna/cpl and jhejna/inverse-preference-learning (research-lightning configs, flattened)
    "alg_kwargs.alpha": ("cpl.alpha", "same"),
    "alg_kwargs.contrastive_bias": ("cpl.bias", "same"),
    "alg_kwargs.bc_coeff": ("cpl.bc_coeff", "same"),
    "alg_kwargs.bc_data": ("cpl.bc_data", "all → all; pos (SFT) → preferred"),
    "alg_kwargs.bc_steps": ("cpl.bc_steps", "same"),
    "alg_kwargs.bc_all_steps": (None, "SFT clones all segments for N steps, then the preferred ones; pbrl's bc clones cpl.bc_data throughout"),
    "alg_kwargs.beta": ("ipl.beta", "same"),
    "alg_kwargs.expectile": ("ipl.expectile", "same"),
    "alg_kwargs.tau": ("ipl.tau", "same"),
    "alg_kwargs.chi2_coeff": ("ipl.chi2", "same: λ_χ² · E[r_Q²] and the clip 1 / (λ_χ² (1 − γ)) (research/algs/ipl_iql.py lines 341-367)"),
    "alg_kwargs.chi2_replay_weight": ("ipl.replay_weight", "same"),
    "alg_kwargs.policy_replay_weight": ("ipl.replay_weight", "pbrl: one replay weight for χ², value and policy"),
    "alg_kwargs.value_replay_weight": ("ipl.replay_weight", "pbrl: one replay weight for χ², value and policy"),
    "alg_kwargs.target_clipping": ("ipl.target_clipping", "same"),
    "alg_kwargs.reward_steps": (None, "P-IQL: gradient steps of the reward model before IQL (pbrl fits it per update)"),
    "optim_kwargs.lr": ("{section}.lr", "same"),
    "network_kwargs.actor_kwargs.dropout": ("{section}.dropout", "cpl section only"),
    "network_kwargs.actor_kwargs.hidden_layers": ("{section}.hidden_sizes", "same"),
    "network_kwargs.hidden_layers": ("{section}.hidden_sizes", "same"),
    "dataset_kwargs.batch_size": ("{section}.batch_size", "same"),
    "dataset_kwargs.feedback_kwargs.batch_size": ("ipl.batch_size", "same"),
    "dataset_kwargs.replay_kwargs.batch_size": ("ipl.replay_batch_size", "same"),
    "dataset_kwargs.segment_length": (None, "segment length of the dataset (pbrl collect's segment length); null = 64"),
    "dataset_kwargs.feedback_kwargs.segment_size": (None, "segment length of the dataset (pbrl collect)"),
    "dataset_kwargs.feedback_kwargs.subsample_size": ("ipl.window", "random window of this many steps"),
    "dataset_kwargs.capacity": (None, "labeled segments/comparisons used from the dataset (pbrl collect's pair count)"),
    "dataset_kwargs.feedback_kwargs.capacity": (None, "comparisons used from the dataset (pbrl collect's pair count)"),
    "dataset_kwargs.discount": ("ipl.discount", "same"),
    "dataset_kwargs.mode": (None, "rank (dense: segments ranked by return) / comparison (sparse pairs)"),
    "dataset_kwargs.label_key": (None, "which return labels the dataset (rl_sum: partial return of the dense reward)"),
    "schedule_kwargs.actor.total_steps": ("cpl.warmup_steps", "linear warm-up of the CPL optimiser"),
    "schedule_kwargs.actor.T_max": (None, "cosine learning-rate decay (P-IQL): pbrl keeps the rate constant"),
    "trainer_kwargs.total_steps": ("steps", "gradient steps (offline)"),
    "eval_env": (None, "the reference's env id (mw_<task>-v2); pbrl's env holds the v3 id"),
    "dataset_kwargs.path": (None, "the reference's released dataset; pbrl makes its own (pbrl collect → reward_free.dataset)"),
    "dataset_kwargs.feedback_kwargs.path": (None, "the reference's released dataset; pbrl makes its own (pbrl collect)"),
    "trainer_kwargs.eval_freq": ("eval_interval", "gradient steps between evaluations"),
    "trainer_kwargs.eval_kwargs.num_ep": ("eval_episodes", "same"),
}

_FEED_TYPES = ("uniform", "disagreement", "entropy", "kcenter", "kcenter-disagreement", "kcenter-entropy")


def translate(spec: RunSpec) -> tuple[dict[str, Any], dict[str, str]]:
    """``(overrides, deviations)``: pbrl dotted keys (current config) set from the spec's reference
    settings, and every reference setting pbrl cannot express, with what pbrl does instead.
    Raises KeyError for a reference key missing from :data:`REFERENCE_KEYS`."""
    s = spec.settings
    section = "ipl" if spec.method in ("ipl", "piql") else "cpl"
    out: dict[str, Any] = {"env": spec.env, "method": spec.method, "seed": spec.seed, "steps": spec.steps}
    if spec.learner:
        out["learner"] = spec.learner
    if spec.teacher_type == "regret":
        out["teacher.type"] = "regret"
    if spec.query and "feed_type" not in s:
        out["query.strategy"] = spec.query
    deviations: dict[str, str] = {}
    for key, value in s.items():
        target, note = REFERENCE_KEYS[key]
        if target is None:
            deviations[key] = f"{value!r}: {note}"
            continue
        target = target.format(section=section)
        if key == "teacher_beta":
            out[target] = math.inf if float(value) < 0 else float(value)
        elif key == "feed_type":
            out[target] = _FEED_TYPES[int(value)]
        elif key in ("num_unsup_steps", "num_seed_steps"):
            out["sac.learning_starts"] = int(s.get("num_seed_steps", 1000))
            out["feedback.first_query_step"] = int(s.get("num_seed_steps", 1000)) + int(s.get("num_unsup_steps", 0))
        elif target == "sac.hidden_sizes":
            prefix = key.rsplit(".", 1)[0]
            out[target] = [int(s[f"{prefix}.hidden_dim"])] * int(s[f"{prefix}.hidden_depth"])
        elif target == "reward.hidden_sizes":
            out[target] = [int(s["reward_hidden_embed_dim"])] * int(s.get("reward_num_hidden_layers", 3))
        elif key == "training_split_size":
            out[target] = round(1.0 - float(value), 6)
        elif key == "alg_kwargs.bc_data":
            out[target] = {"pos": "preferred"}.get(value, value)
        elif target in ("steps", "eval_interval", "feedback.interval", "sac.buffer_size"):
            out[target] = int(float(value))
        else:
            out[target] = value
    for a, b in (("double_q_critic", "diag_gaussian_actor"),):
        if all(f"{p}.params.hidden_dim" in s for p in (a, b)) and (
            s[f"{a}.params.hidden_dim"], s.get(f"{a}.params.hidden_depth")) != (s[f"{b}.params.hidden_dim"], s.get(f"{b}.params.hidden_depth")):
            deviations["diag_gaussian_actor.params.hidden_dim"] = "actor and critic sizes differ; pbrl uses the critic's for both"
    lrs = {s[k] for k in ("agent.params.actor_lr", "agent.params.critic_lr") if k in s}
    if len(lrs) > 1:
        deviations["agent.params.critic_lr"] = f"actor_lr ≠ critic_lr ({sorted(lrs)}); pbrl uses actor_lr for both"
    if "agent.params.alpha_lr" in s and "agent.params.actor_lr" in s and float(s["agent.params.alpha_lr"]) == float(s["agent.params.actor_lr"]):
        deviations.pop("agent.params.alpha_lr", None)
    for key, expected in (("agent.params.critic_target_update_frequency", 1), ("agent.params.actor_update_frequency", 1)):
        if key in s and int(s[key]) == expected:
            deviations.pop(key, None)
    return out, deviations
