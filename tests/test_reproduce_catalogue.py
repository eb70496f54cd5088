"""The catalogue of published experiments (experiments/reproduce/): every file loads and
validates, a bad file is refused with its reason, scaling shrinks steps, labels and every
schedule step together, the listing names each source, and every reference key maps."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from pbrl.experiments.reproduce.catalogue import (
    CATALOGUE_DIR, LABEL_KEYS, NOT_RETRIEVED, STEP_KEYS, CatalogueError, expand, list_entries, load_axes,
    load_catalogue, load_entry, scaled, validate,
)
from pbrl.experiments.config import parse_config
from pbrl.experiments.reproduce.translate import REFERENCE_KEYS, nested, translate

FILES = sorted(p for p in CATALOGUE_DIR.glob("*.yaml") if not p.name.startswith("_"))
REQUIRED_ENTRIES = {
    "pebble-walker-walk", "pebble-quadruped-walk", "pebble-cheetah-run", "pebble-button-press", "pebble-sweep-into",
    "pebble-door-open", "pebble-drawer-open", "qpa-walker-walk", "qpa-cheetah-run", "qpa-quadruped-walk",
    "qpa-door-open", "qpa-drawer-open", "qpa-door-unlock", "reed-walker-walk", "hprior-walker-walk",
    "cpl-metaworld-offline", "ipl-metaworld-offline", "regret-vs-partial-return",
}


@pytest.fixture(scope="module")
def catalogue():
    return load_catalogue()


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_every_file_loads_and_validates(path):
    entry = load_entry(path)
    assert entry.name == path.stem
    assert entry.source["repo"] and all(f["path"] and f["where"] for f in entry.source["files"])
    for figure in entry.published:
        assert figure["value"] == NOT_RETRIEVED or (isinstance(figure["value"], (int, float)) and figure["source"])
    specs = expand(entry, seeds=1)
    assert specs and all(s.steps == s.published_steps for s in specs)


def test_the_catalogue_holds_the_required_experiments(catalogue):
    assert REQUIRED_ENTRIES <= set(catalogue)
    walker = catalogue["pebble-walker-walk"]
    assert set(walker.grid) == {"budget", "teacher", "sampling"}
    assert list(walker.grid["teacher"]) == ["oracle", "noisy", "mistake", "skip", "myopic", "equal"]
    assert len(walker.grid["sampling"]) == 6 and set(walker.grid["budget"]) == {"500", "1000"}
    assert walker.steps == 500_000 and walker.settings["agent.params.batch_size"] == 1024
    assert walker.settings["double_q_critic.params.hidden_dim"] == 1024 and walker.settings["double_q_critic.params.hidden_depth"] == 2
    mw = catalogue["pebble-sweep-into"]
    assert set(mw.grid["budget"]) == {"10000", "20000"} and mw.steps == 1_000_000
    assert (mw.settings["agent.params.batch_size"], mw.settings["double_q_critic.params.hidden_depth"]) == (512, 3)
    budgets = {name: catalogue[f"qpa-{name}"].settings["max_feedback"] for name in
               ("walker-walk", "cheetah-run", "quadruped-walk", "door-open", "drawer-open", "door-unlock")}
    assert budgets == {"walker-walk": 100, "cheetah-run": 100, "quadruped-walk": 1000, "door-open": 3000,
                       "drawer-open": 3000, "door-unlock": 2000}


def _bpref_cell(catalogue, **cell):
    specs = expand(catalogue["pebble-walker-walk"], seeds=1)
    return next(s for s in specs if s.role == "method" and all(s.cell[k] == v for k, v in cell.items()))


def test_grid_values_override_the_published_settings(catalogue):
    spec = _bpref_cell(catalogue, budget="500", teacher="myopic", sampling="entropy")
    assert (spec.settings["max_feedback"], spec.settings["reward_batch"]) == (500, 50)
    assert spec.settings["teacher_gamma"] == 0.9 and spec.settings["feed_type"] == 2
    # the entry's own settings are untouched by the expansion
    assert catalogue["pebble-walker-walk"].settings["max_feedback"] == 1000


def test_scale_shrinks_steps_labels_and_the_schedule_together(catalogue):
    for entry in catalogue.values():
        full = {s.name: s for s in expand(entry, scale=1.0, seeds=2)}
        small = expand(entry, scale=0.02, seeds=2)
        assert len(small) == len(full)
        for spec in small:
            ref = full[spec.name]
            assert spec.scale == 0.02 and spec.published_steps == ref.steps
            assert spec.steps == scaled(ref.steps, 0.02) < ref.steps
            for key, value in ref.settings.items():
                if key in STEP_KEYS or key in LABEL_KEYS:
                    if value is not None:
                        assert spec.settings[key] == max(1, round(float(value) * 0.02)), (entry.name, key)
                else:
                    assert spec.settings[key] == value, (entry.name, key)  # nothing else moves
    spec = _bpref_cell(catalogue, budget="1000", teacher="oracle", sampling="disagreement")
    small = next(s for s in expand(catalogue["pebble-walker-walk"], scale=0.02, seeds=1) if s.name == spec.name)
    s = small.settings
    # 500k steps → 10k; first query 10k → 200, every 20k → 400, 1,000 labels in rounds of 100 → 20 in rounds of 2
    assert small.steps == 10_000 and s["num_train_steps"] == 10_000
    assert (s["num_seed_steps"] + s["num_unsup_steps"], s["num_interact"]) == (200, 400)
    assert (s["max_feedback"], s["reward_batch"]) == (20, 2)
    # the same number of feedback rounds fit in the run, and the budget lasts as many rounds
    rounds = lambda st, steps: (steps - st["num_seed_steps"] - st["num_unsup_steps"]) // st["num_interact"] + 1  # noqa: E731
    assert rounds(s, small.steps) == rounds(spec.settings, spec.steps)
    assert s["max_feedback"] // s["reward_batch"] == spec.settings["max_feedback"] // spec.settings["reward_batch"]
    for key in ("num_seed_steps", "num_unsup_steps", "num_interact", "max_feedback", "reward_batch", "num_train_steps"):
        assert key in small.scaled_keys
    assert "segment" not in small.scaled_keys and s["segment"] == 50


def test_scale_and_seeds_are_checked(catalogue):
    entry = catalogue["qpa-walker-walk"]
    with pytest.raises(ValueError):
        expand(entry, scale=0.0)
    with pytest.raises(ValueError):
        expand(entry, scale=1.5)
    seeds = sorted({s.seed for s in expand(entry, seeds=7, baseline=False)})
    assert seeds == [1, 2, 3, 4, 5, 6, 7]  # the reference's five, then new ones
    assert {s.seed for s in expand(entry, seeds=2)} == {1, 2}


def test_baseline_runs_match_the_grid_envs_seeds_and_steps(catalogue):
    specs = expand(catalogue["ipl-metaworld-offline"], seeds=1)
    assert not [s for s in specs if s.role == "baseline"]  # offline: no SAC normaliser
    specs = expand(catalogue["pebble-walker-walk"], scale=0.02, seeds=2)
    baselines = [s for s in specs if s.role == "baseline"]
    assert len(baselines) == 2 and {b.seed for b in baselines} == {s.seed for s in specs}
    assert all(b.method == "sac" and b.steps == 10_000 and b.env == "dmc:walker-walk" for b in baselines)
    assert baselines[0].settings["agent.params.actor_lr"] == 0.0005 and baselines[0].settings["num_seed_steps"] == 100


def test_listing_prints_every_entry_with_its_source(catalogue):
    text = list_entries(catalogue)
    for entry in catalogue.values():
        assert f"{entry.name}: {entry.title}" in text
        assert f"source: {entry.source['repo']}@{entry.source['commit'][:7]}: {entry.source['files'][0]['path']}" in text


def _valid() -> dict:
    return yaml.safe_load((CATALOGUE_DIR / "qpa-walker-walk.yaml").read_text())


@pytest.mark.parametrize("breakage, message", [
    (lambda d: d.pop("source"), "missing required field 'source'"),
    (lambda d: d["source"].update(files=[]), "non-empty 'files'"),
    (lambda d: d["source"]["files"][0].pop("where"), "needs 'path' and 'where'"),
    (lambda d: d["published"][0].update(value=1234.5), "needs its 'source'"),
    (lambda d: d["published"][0].update(value=1234.5, source="not retrieved"), "needs its 'source'"),
    (lambda d: d["published"][0].update(value="about 900"), "must be a number or 'not retrieved'"),
    (lambda d: d.update(steps=400000), "num_train_steps 500000 ≠ steps 400000"),
    (lambda d: d.update(method="ppo"), "method 'ppo'"),
    (lambda d: d.update(grid={"teacher": "no_such_axis"}), "no shared axis"),
    (lambda d: d.update(extra=1), "unknown field 'extra'"),
])
def test_invalid_entries_are_refused_with_the_reason(breakage, message):
    data = _valid()
    assert validate(data, load_axes()) == []
    broken = copy.deepcopy(data)
    breakage(broken)
    errors = validate(broken, load_axes())
    assert any(message in e for e in errors), errors


def test_a_published_number_with_its_source_is_accepted(tmp_path):
    data = _valid()
    data["published"][0].update(value=812.0, source="Hu et al. 2024, Table 9 (hypothetical, test only)")
    assert validate(data, load_axes()) == []
    path = tmp_path / "qpa-walker-walk.yaml"
    path.write_text(yaml.safe_dump(data))
    data["name"] = "other"
    path.with_name("bad.yaml").write_text(yaml.safe_dump(data))
    with pytest.raises(CatalogueError, match="must equal the file name"):
        load_entry(path.with_name("bad.yaml"), load_axes())


def test_every_reference_key_translates_and_is_in_the_readme_table(catalogue):
    used = set()
    for entry in catalogue.values():
        for spec in expand(entry, seeds=1):
            used |= set(spec.settings)
            overrides, deviations = translate(spec)  # raises KeyError on an unmapped reference key
            assert overrides["steps"] == spec.steps and overrides["env"] == spec.env
            data = nested(overrides)
            if entry.baseline is None:  # the offline entries: their data comes from a dataset (pbrl collect)
                data["reward_free"] = {"dataset": "dataset.h5"}
            config = parse_config(data)  # every run of the catalogue is a valid pbrl config
            expected = {"sac": None, "pebble": {"regret": "advantage"}.get(spec.learner, spec.learner or "bt")}
            assert config.learner_type == expected.get(spec.method, spec.method)
    assert used <= set(REFERENCE_KEYS)
    readme = (CATALOGUE_DIR / "README.md").read_text()
    missing = [k for k in REFERENCE_KEYS if f"`{k}`" not in readme]
    assert not missing, f"add these reference keys to the README's mapping table: {missing}"


def test_translation_of_bpref_walker_walk(catalogue):
    spec = _bpref_cell(catalogue, budget="1000", teacher="oracle", sampling="disagreement")
    out, deviations = translate(spec)
    assert out["feedback.budget"] == 1000 and out["feedback.per_round"] == 100 and out["feedback.interval"] == 20000
    assert out["feedback.first_query_step"] == 10_000 and out["agent.learning_starts"] == 1000
    assert out["teacher.beta"] == float("inf") and out["query.strategy"] == "disagreement"
    assert out["agent.hidden_sizes"] == [1024, 1024] and out["agent.batch_size"] == 1024 and out["agent.learning_rate"] == 0.0005
    config = parse_config(nested(out))
    assert (config.learner_type, config.agent_type, config.teacher.beta, config.feedback.budget) == ("bt", "sac", float("inf"), 1000)
    baseline = next(s for s in expand(catalogue["pebble-walker-walk"], seeds=1) if s.role == "baseline")
    out, _ = translate(baseline)  # the baseline asks no labels: no learner, teacher, feedback or query keys
    assert not [k for k in out if k.startswith(("learner.", "teacher.", "feedback.", "query."))]
    config = parse_config(nested(out))
    assert config.learner is None and config.agent.learning_starts == 5000 and config.agent.hidden_sizes == (1024, 1024)
    assert "agent.params.alpha_lr" not in deviations and "agent.params.critic_target_update_frequency" not in deviations
    assert out["agent.target_update_interval"] == 2
    assert (out["agent.impl"], out["agent.alpha_lr"], out["agent.log_std_bounds"]) == ("fast", 0.0001, [-5, 2])  # FastSAC expresses them
    qpa = expand(catalogue["qpa-door-open"], seeds=1)[0]
    out, deviations = translate(qpa)
    assert out["query.strategy"] == "qpa" and out["query.qpa_episodes"] == 60 and out["agent.recent_fraction"] == 0.5
    assert "data_aug_ratio" not in deviations and "learner.augment" not in out  # QPA's MetaWorld branch has no crops
    out, deviations = translate(expand(catalogue["qpa-walker-walk"], seeds=1)[0])
    assert out["learner.augment"] == "qpa" and "data_aug_ratio" not in deviations


def test_catalogue_files_ship_with_the_package():
    import tomllib

    pyproject = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())
    assert "*.yaml" in pyproject["tool"]["setuptools"]["package-data"]["pbrl.experiments.reproduce"]


def test_readme_key_tables_are_reference_keys():
    """The README's reference-key tables say exactly what ``REFERENCE_KEYS`` says, row for row."""
    import re

    readme = (Path(__file__).resolve().parents[1] / "experiments" / "reproduce" / "README.md").read_text()
    rows = {m.group(1): (m.group(2), m.group(3)) for m in re.finditer(r"^\| `([^`]+)` \| (`[^`]+`|— \(deviation\)) \| (.+) \|$", readme, re.M)}
    expected = {k: (f"`{key}`" if key else "— (deviation)", how) for k, (key, how) in REFERENCE_KEYS.items()}
    assert {k: rows.get(k) for k in expected} == expected
