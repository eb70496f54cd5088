"""Sweeps and reports: IQM and stratified bootstrap by hand, a tiny real sweep."""

import numpy as np

from pbrl.experiments.report import iqm, stratified_bootstrap_ci, write_report
from pbrl.experiments.sweep import expand_grid, run_sweep
from tests.test_training import TINY


def test_iqm_by_hand():
    assert iqm(np.array([0, 1, 2, 3, 4, 5, 6, 100])) == np.mean([2, 3, 4, 5])  # trims 2 runs each side
    assert iqm(np.array([1.0, 2.0, 3.0])) == 2.0  # ⌊3/4⌋ = 0 trimmed: plain mean


def test_bootstrap_interval_contains_the_estimate_and_shrinks_with_runs():
    rng = np.random.default_rng(0)
    small, large = rng.normal(10, 2, 8), rng.normal(10, 2, 200)
    lo_s, hi_s = stratified_bootstrap_ci(small)
    lo_l, hi_l = stratified_bootstrap_ci(large)
    assert lo_s <= iqm(small) <= hi_s and lo_l <= iqm(large) <= hi_l
    assert (hi_l - lo_l) < (hi_s - lo_s)
    # stratified: a task with constant scores contributes no spread
    const = np.column_stack([np.full(8, 5.0), np.full(8, 5.0)])
    assert stratified_bootstrap_ci(const) == (5.0, 5.0)


def test_grid_expansion():
    assert expand_grid(["a=1,2", "b=x"]) == [["a=1", "b=x"], ["a=2", "b=x"]]
    assert expand_grid([]) == [[]]


def test_tiny_sweep_runs_groups_and_reports(tmp_path):
    extra = [o for o in TINY if not o.startswith("steps")] + ["steps=400", "feedback.budget=5"]
    failed = run_sweep(None, [0, 1], ["teacher.preset=oracle,mistake"], tmp_path, jobs=2, extra=extra)
    assert failed == []
    assert len(list(tmp_path.glob("*/metrics.jsonl"))) == 4
    report = write_report(tmp_path).read_text()
    assert "teacher.preset=oracle" in report and "teacher.preset=mistake" in report
    assert (tmp_path / "report.png").exists()
    # Started again, the finished sweep has nothing to do.
    assert run_sweep(None, [0, 1], ["teacher.preset=oracle,mistake"], tmp_path, jobs=2, extra=extra) == []


def test_a_run_written_before_a_key_existed_groups_with_the_default(tmp_path):
    """load_runs resolves each config with today's defaults: a config.yaml without a key that was added
    later (what the older code did) and one with that key at its default land in one group."""
    import yaml as _yaml

    from pbrl.experiments.config import parse_config, to_dict
    from pbrl.experiments.report import group_runs, load_runs

    for seed in (0, 1):
        run = tmp_path / f"run{seed}"
        run.mkdir()
        config = to_dict(parse_config({}, ["env=gym:Pendulum-v1", "method=pebble", f"seed={seed}"]))
        if seed == 0:
            del config["agent"]["state_entropy_std"], config["agent"]["target_update_clock"]
        (run / "config.yaml").write_text(_yaml.safe_dump(config))
        (run / "metrics.jsonl").write_text('{"step": 10, "eval/true_return": 1.0}\n')
    assert list(group_runs(load_runs(tmp_path))) == ["all runs"]
    config = _yaml.safe_load((tmp_path / "run1" / "config.yaml").read_text())
    config["agent"]["state_entropy_std"] = "bpref-code"
    (tmp_path / "run1" / "config.yaml").write_text(_yaml.safe_dump(config))
    assert sorted(group_runs(load_runs(tmp_path))) == ["agent.state_entropy_std=bpref-code", "agent.state_entropy_std=running"]


def test_a_teacher_grid_is_grouped_by_preset_alone():
    """B-Pref's presets each set β, γ and the ε's: the group is named by the preset, the finer key;
    two keys that determine each other both stay in the name."""
    from pbrl.experiments.report import group_runs
    from pbrl.teachers.synthetic import PRESETS

    runs = []
    for preset in ("oracle", "stoc", "mistake", "skip", "equal", "myopic"):
        teacher = PRESETS[preset]
        for seed in (0, 1):
            config = {"seed": seed, "teacher.preset": preset, "teacher.beta": teacher.beta, "teacher.gamma": teacher.gamma,
                      "teacher.eps_mistake": teacher.eps_mistake, "teacher.eps_skip": teacher.eps_skip,
                      "teacher.eps_equal": teacher.eps_equal}
            runs.append({"config": config})
    groups = group_runs(runs)
    assert sorted(groups) == sorted(f"teacher.preset={p}" for p in ("oracle", "stoc", "mistake", "skip", "equal", "myopic"))
    assert all(len(members) == 2 for members in groups.values())
    # As the reproduce catalogue writes them: B-Pref's knobs beside the default preset name.
    from pbrl.experiments.report import _flatten, named_preset

    written = {"type": "synthetic", "preset": "oracle", "beta": "inf", "gamma": 1.0, "eps_mistake": 0.1,
               "eps_skip": 0.0, "eps_equal": 0.0}
    assert named_preset({"teacher": written})["teacher"]["preset"] == "mistake"
    assert named_preset({"teacher": {**written, "eps_mistake": 0.2}})["teacher"]["preset"] == "oracle"  # no preset's
    catalogue_runs = [{"config": _flatten(named_preset({"seed": s, "teacher": {**written, "eps_mistake": e}}))}
                      for s in (0, 1) for e in (0.0, 0.1)]
    assert sorted(group_runs(catalogue_runs)) == ["teacher.preset=mistake", "teacher.preset=oracle"]
    pairs = [{"config": {"seed": 0, "feedback.budget": b, "feedback.per_round": b // 10}} for b in (500, 1000)]
    assert sorted(group_runs(pairs)) == ["feedback.budget=1000, feedback.per_round=100", "feedback.budget=500, feedback.per_round=50"]
