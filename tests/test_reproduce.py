"""``pbrl reproduce``: choosing the cells of a grid, the evaluation schedule at small scale,
matching published figures to runs, and a tiny catalogue entry end to end (its run and its
SAC baseline through the CLI, the rliable report with the scale and the deviations, a second
invocation that finds everything done)."""

from __future__ import annotations

import json

import pytest
import yaml

from pbrl.experiments.cli import main
from pbrl.experiments.config import TrainConfig, parse_config, to_dict
from pbrl.experiments.reproduce.catalogue import load_catalogue
from pbrl.experiments.reproduce.run import (
    _evaluation, check_started_run, plan_runs, published_cell, published_figures, select_cells,
)
from pbrl.experiments.reproduce.translate import nested
from pbrl.registry import ConfigError
from pbrl.store import PreferenceStore


@pytest.fixture(scope="module")
def walker():
    return load_catalogue()["pebble-walker-walk"]


def test_cells_the_whole_grid_a_restriction_or_the_published_cell(walker):
    assert len(select_cells(walker)) == 2 * 6 * 6
    assert published_cell(walker) == {"budget": "1000", "teacher": "oracle", "sampling": "disagreement"}
    assert select_cells(walker, grid_axes="none") == [published_cell(walker)]
    teachers = select_cells(walker, only=["teacher=oracle,mistake"], grid_axes="teacher")
    assert [c["teacher"] for c in teachers] == ["oracle", "mistake"]
    assert all(c["budget"] == "1000" and c["sampling"] == "disagreement" for c in teachers)
    assert len(select_cells(walker, only=["sampling=uniform"])) == 2 * 6
    with pytest.raises(ConfigError, match="no grid axis 'teachers'"):
        select_cells(walker, only=["teachers=oracle"])
    with pytest.raises(ConfigError, match="labels of teacher"):
        select_cells(walker, only=["teacher=noisy,stoc"])


def test_small_scale_evaluation_keeps_the_published_share_of_steps():
    # walker-walk: 10 episodes every 10,000 of 500k steps; at 0.02 the interval scaled to 200.
    overrides, note = _evaluation({"eval_interval": 200, "eval_episodes": 10}, 0.02)
    assert (overrides["eval_episodes"], overrides["eval_interval"]) == (1, 1000)
    assert overrides["eval_episodes"] / overrides["eval_interval"] <= 10 / 10_000 and "10 every 200" in note
    assert _evaluation({"eval_interval": 10_000, "eval_episodes": 10}, 1.0) == ({"eval_interval": 10_000, "eval_episodes": 10}, None)
    overrides, _ = _evaluation({"eval_interval": 5000, "eval_episodes": 10}, 0.5)  # 5 episodes suffice at half scale
    assert (overrides["eval_episodes"], overrides["eval_interval"]) == (5, 5000)
    overrides, _ = _evaluation({}, 0.1)  # no published schedule: pbrl's default (5 every 10,000) stands for it
    assert (overrides["eval_episodes"], overrides["eval_interval"]) == (1, 2000)
    assert overrides["eval_episodes"] / overrides["eval_interval"] <= TrainConfig.eval_episodes / TrainConfig.eval_interval


def test_a_set_over_a_scaled_key_names_the_published_and_the_scaled_value():
    door = load_catalogue()["pebble-door-open"]  # RUNE: 10 episodes every 10,000 steps
    method = plan_runs(door, 0.1, 1, [published_cell(door)], sets=["eval_episodes=5", "agent.batch_size=256"])[0]
    assert method.deviations["--set eval_episodes"] == "5 (published: 10; 1 after the scaling above)"
    assert method.deviations["--set agent.batch_size"] == "256 (published: 512)"
    assert method.overrides["eval_episodes"] == 5


def test_a_plan_over_a_run_started_with_other_settings_is_refused(tmp_path):
    """A started run resumes from its own config.yaml: a new plan that differs would be reported, not run."""
    door = load_catalogue()["pebble-door-open"]
    run = plan_runs(door, 0.1, 1, [published_cell(door)], sets=["agent.batch_size=256"])[0]
    run_dir = tmp_path / run.dirname
    run_dir.mkdir()
    started = to_dict(parse_config(nested({**run.overrides, "run_dir": str(run_dir)})))
    (run_dir / "config.yaml").write_text(yaml.safe_dump(started))
    check_started_run(run_dir, run)  # the same settings: resumed
    check_started_run(tmp_path / "not-started", run)
    other = plan_runs(door, 0.1, 1, [published_cell(door)], sets=["agent.batch_size=128"])[0]
    with pytest.raises(ConfigError, match=r"started with other settings \(agent.batch_size: 256 → 128\)"):
        check_started_run(run_dir, other)


def test_a_published_figure_matches_the_runs_of_its_cell(walker):
    cells = select_cells(walker, only=["teacher=oracle,mistake"], grid_axes="teacher")
    runs = plan_runs(walker, 0.01, 1, cells)
    figures = published_figures(walker, runs)
    assert figures[0]["match"] == {"teacher.eps_mistake": 0}  # the only config key the oracle cell differs in
    assert figures[1]["group"].startswith("SAC on the true reward")
    assert [r.spec.role for r in runs] == ["method", "method", "baseline"]


def test_offline_entries_need_their_datasets():
    entry = load_catalogue()["cpl-metaworld-offline"]
    with pytest.raises(ConfigError, match="--dataset metaworld:drawer-open-v3=PATH"):
        plan_runs(entry, 0.01, 1, select_cells(entry, grid_axes="none"))
    runs = plan_runs(entry, 0.01, 1, select_cells(entry, grid_axes="none"), datasets={"metaworld:drawer-open-v3": "d.h5"})
    assert [r.resolved["learner.type"] for r in runs] == ["cpl"] and runs[0].resolved["reward_free.dataset"].endswith("d.h5")


def test_a_tiny_entry_end_to_end(tmp_path, capsys):
    """pebble-walker-walk at 1/1000 of its steps and labels: the published cell, one seed, small nets."""
    args = ["reproduce", "pebble-walker-walk", "--scale", "0.001", "--seeds", "1", "--grid-axes", "none",
            "--set", "agent.hidden_sizes=[32,32]", "--set", "agent.batch_size=32", "--set", "learner.hidden_sizes=[16,16]",
            "--set", "learner.max_epochs=5", "--out", str(tmp_path)]
    assert main(args) == 0
    plan = yaml.safe_load((tmp_path / "reproduce.yaml").read_text())
    assert plan["scale"] == 0.001 and plan["command"].startswith("pbrl reproduce pebble-walker-walk --scale 0.001")
    method, baseline = (tmp_path / run["dir"] for run in plan["runs"])
    assert [run["spec"]["role"] for run in plan["runs"]] == ["method", "baseline"]
    for run_dir in (method, baseline):
        config = yaml.safe_load((run_dir / "config.yaml").read_text())
        assert config["steps"] == 500 and config["seed"] == 12345 and config["agent"]["batch_size"] == 32
    budget = yaml.safe_load((method / "config.yaml").read_text())["feedback"]["budget"]
    store = PreferenceStore(method / "preferences.sqlite")
    assert store.counts().labeled == budget == 1  # max_feedback 1,000 × 0.001
    store.close()
    report = (tmp_path / "report.md").read_text()
    assert "Scale 0.001: 500 steps per run (published 500,000)" in report
    for deviation in ("--set agent.batch_size: 32 (published: 1024)", "1 episode(s) every"):
        assert deviation in report
    assert "agent.params.alpha_lr" not in report and "log_std_bounds" not in report  # FastSAC (agent.impl=fast) expresses them
    assert "activation" not in report  # B-Pref's tanh is what pbrl does: not a deviation
    summary = json.loads((tmp_path / "report.json").read_text())
    assert summary["normalised"] and set(summary["groups"]) == {"all runs", "SAC on the true reward (baseline)"}
    assert summary["groups"]["SAC on the true reward (baseline)"]["iqm"] == pytest.approx(1.0)
    capsys.readouterr()
    assert main(args) == 0  # again: every run is finished, only the report is rewritten
    assert "2 runs (0 to do)" in capsys.readouterr().out
    # --report-only: the saved plan, not a new one (a run config written before a key existed groups with the rest)
    saved_plan = (tmp_path / "reproduce.yaml").read_text()
    config = yaml.safe_load((method / "config.yaml").read_text())
    del config["agent"]["state_entropy_std"]
    (method / "config.yaml").write_text(yaml.safe_dump(config))
    (tmp_path / "report.json").unlink()
    assert main([*args, "--report-only"]) == 0
    assert "to do" not in capsys.readouterr().out and (tmp_path / "reproduce.yaml").read_text() == saved_plan
    assert set(json.loads((tmp_path / "report.json").read_text())["groups"]) == {"all runs", "SAC on the true reward (baseline)"}
