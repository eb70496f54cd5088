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
together. ``translate.py`` maps a spec's reference keys onto pbrl's config keys
(``REFERENCE_KEYS``, the table in this folder's README).
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
