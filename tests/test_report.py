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
