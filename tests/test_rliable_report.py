"""The report's statistics are rliable's: IQM and its 95% stratified-bootstrap interval equal
rliable called directly on the same (normalised) scores; the score is the eval return ÷ SAC
on the true reward at the same step when baseline runs exist, raw otherwise; performance
profiles and the side-by-side table against published figures."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml
from rliable import library as rly
from rliable import metrics

from pbrl.experiments.report import (
    BASELINE_GROUP, interval_estimates, iqm, normalise, performance_profile, write_report,
)
from pbrl.run_log import MetricsLog

ENVS = ("dmc:walker-walk", "dmc:cheetah-run")


def _run(root, name, config, points):
    """A fake run: config.yaml and metrics.jsonl with (step, labels, eval return) rows."""
    run = root / name
    run.mkdir(parents=True)
    (run / "config.yaml").write_text(yaml.safe_dump(config))
    log = MetricsLog(run / "metrics.jsonl")
    for step, labels, value in points:
        log.write(step, {"teacher/labeled": labels, "eval/true_return": value})


def _rliable(scores, reps=2000, seed=0):
    """rliable called directly, as its README shows. Its StratifiedBootstrap draws from NumPy's
    global RNG (the random_state argument is not used by rliable 1.2), so that is what is seeded."""
    np.random.seed(seed)
    points, intervals = rly.get_interval_estimates({"m": scores}, lambda x: np.array([metrics.aggregate_iqm(x)]), reps=reps)
    return points["m"][0], intervals["m"][0, 0], intervals["m"][1, 0]


@pytest.fixture
def grid(tmp_path):
    """Two presets × two envs × 5 seeds, and SAC baselines (3 seeds per env, evaluated at other steps)."""
    rng = np.random.default_rng(0)
    finals = {}
    for preset, level in (("oracle", 800.0), ("mistake", 500.0)):
        for env in ENVS:
            for seed in range(5):
                final = level * (1.0 if env == ENVS[0] else 0.5) + rng.normal(0, 60)
                finals[preset, env, seed] = final
                config = {"env": env, "method": "pebble", "seed": seed, "teacher": {"preset": preset}, "run_dir": f"r{seed}"}
                points = [(1000, 10, final * 0.3), (2000, 20, final * 0.7), (3000, 30, final)]
                _run(tmp_path, f"{preset}-{env.replace(':', '_')}-{seed}", config, points)
    baseline_at_3000 = {}
    for env in ENVS:
        values = []
        for seed in range(3):
            top = (900.0 if env == ENVS[0] else 450.0) + 30.0 * seed
            # evaluated at 500, 2500, 3500: the value at 3000 is interpolated (top at 2500, top + 100 at 3500)
            _run(tmp_path, f"sac-{env.replace(':', '_')}-{seed}", {"env": env, "method": "sac", "seed": seed},
                 [(500, 0, 10.0), (2500, 0, top), (3500, 0, top + 100.0)])
            values.append(top + 50.0)
        baseline_at_3000[env] = float(np.mean(values))
    return tmp_path, finals, baseline_at_3000


def test_iqm_and_interval_equal_rliable_on_the_same_normalised_scores(grid):
    root, finals, reference = grid
    write_report(root)
    report = json.loads((root / "report.json").read_text())
    assert report["normalised"] is True
    for preset in ("oracle", "mistake"):
        group = report["groups"][f"teacher.preset={preset}"]
        assert group["tasks"] == sorted(ENVS) and group["runs"] == 10
        expected = np.array([[finals[preset, env, seed] / reference[env] for env in sorted(ENVS)] for seed in range(5)])
        np.testing.assert_allclose(group["scores"], expected, rtol=1e-12)
        point, low, high = _rliable(expected)
        assert group["iqm"] == pytest.approx(point, rel=1e-12)
        assert group["ci"] == pytest.approx([low, high], rel=1e-12)
        assert low < point < high
        text = (root / "report.md").read_text()
        assert f"| teacher.preset={preset} | 10 | 2 | {point:.3g} | [{low:.3g}, {high:.3g}] |" in text
    # the baseline group is itself normalised: its IQM sits near 1
    assert report["groups"][BASELINE_GROUP]["iqm"] == pytest.approx(1.0, abs=0.1)
    assert (root / "report.png").stat().st_size > 0 and (root / "report_profiles.png").stat().st_size > 0


def test_without_baseline_runs_scores_are_raw(tmp_path):
    values = [310.0, 290.0, 350.0, 120.0, 330.0, 300.0]
    for seed, value in enumerate(values):
        _run(tmp_path, f"run{seed}", {"env": ENVS[0], "method": "pebble", "seed": seed}, [(1000, 5, 1.0), (2000, 10, value)])
    write_report(tmp_path, reps=500, seed=3)
    report = json.loads((tmp_path / "report.json").read_text())
    group = report["groups"]["all runs"]
    assert report["normalised"] is False and report["reps"] == 500
    np.testing.assert_allclose(np.ravel(group["scores"]), values)
    point, low, high = _rliable(np.array(values)[:, None], reps=500, seed=3)
    assert (group["iqm"], *group["ci"]) == pytest.approx((point, low, high), rel=1e-12)
    assert group["iqm"] == pytest.approx(np.mean(sorted(values)[1:5]))  # n=6: ⌊6/4⌋ = 1 trimmed on each side


def test_normalisation_is_at_the_same_step():
    reference = (np.array([0.0, 1000.0, 2000.0]), np.array([0.0, 100.0, 300.0]))
    out = normalise(np.array([50.0, 100.0, 400.0, 5.0]), np.array([1000.0, 1500.0, 2500.0, 0.0]), reference)
    np.testing.assert_allclose(out[:3], [0.5, 0.5, 400.0 / 300.0])  # 1500 → 200 interpolated; past the end → last value
    assert np.isnan(out[3])  # a baseline of 0 gives no ratio


def test_profiles_are_rliable_score_distributions(grid):
    scores = np.random.default_rng(1).uniform(0, 1.2, size=(6, 2))
    taus = np.linspace(0, 1.2, 13)
    profile, band = performance_profile(scores, taus, reps=100)
    np.testing.assert_allclose(profile, rly.score_distributions(scores, taus))
    assert band.shape == (2, 13) and np.all(band[0] <= profile + 1e-12) and np.all(profile <= band[1] + 1e-12)


def test_published_figures_sit_beside_ours(grid):
    root, _, _ = grid
    published = [
        {"metric": "normalised return, oracle", "value": "not retrieved", "note": "B-Pref Fig. 3 (curves)", "group": "teacher.preset=oracle"},
        {"metric": "normalised return, mistake", "value": 0.61, "source": "hypothetical paper, Table 1 (test only)",
         "match": {"teacher.preset": "mistake"}},
        {"metric": "a method never run", "value": "not retrieved", "match": {"teacher.preset": "skip"}},
    ]
    write_report(root, published=published, notes=["scale 0.02 of the published steps and labels"])
    text = (root / "report.md").read_text()
    report = json.loads((root / "report.json").read_text())
    oracle, mistake = report["groups"]["teacher.preset=oracle"], report["groups"]["teacher.preset=mistake"]
    assert "* scale 0.02 of the published steps and labels" in text
    assert (f"| normalised return, oracle | not retrieved | B-Pref Fig. 3 (curves) | "
            f"{oracle['iqm']:.3g} [{oracle['ci'][0]:.3g}, {oracle['ci'][1]:.3g}] | 10 |") in text
    assert (f"| normalised return, mistake | 0.61 | hypothetical paper, Table 1 (test only) | "
            f"{mistake['iqm']:.3g} [{mistake['ci'][0]:.3g}, {mistake['ci'][1]:.3g}] | 10 |") in text
    assert "| a method never run | not retrieved |  | no matching runs | 0 |" in text


def test_helpers_match_rliable_directly_and_leave_the_global_rng_alone():
    x = np.random.default_rng(2).normal(size=(9, 3))
    assert iqm(x) == pytest.approx(metrics.aggregate_iqm(x))
    np.random.seed(123)
    before = np.random.get_state()[1].copy()
    first = interval_estimates(x, reps=300, seed=5)
    assert np.array_equal(np.random.get_state()[1], before)  # the caller's global state is restored
    assert interval_estimates(x, reps=300, seed=5) == first  # and the result is reproducible
    assert first == pytest.approx(_rliable(x, reps=300, seed=5), rel=1e-12)
    assert interval_estimates(x, reps=300, seed=6) != first


def test_the_reward_models_final_accuracy_and_correlation_per_group(tmp_path):
    """The columns a teacher grid is read by: each run's last fresh-pair accuracy and reward
    correlation, averaged over the group's runs."""
    finals = {("oracle", 0): (0.91, 0.62), ("oracle", 1): (0.87, 0.58), ("mistake", 0): (0.74, 0.31), ("mistake", 1): (0.70, 0.35)}
    for (preset, seed), (accuracy, corr) in finals.items():
        run = tmp_path / f"{preset}-{seed}"
        run.mkdir()
        (run / "config.yaml").write_text(yaml.safe_dump({"env": ENVS[0], "method": "pebble", "seed": seed,
                                                         "teacher": {"preset": preset}}))
        log = MetricsLog(run / "metrics.jsonl")
        log.write(1000, {"reward/fresh_pair_accuracy": 0.5, "reward/true_correlation": 0.0, "teacher/labeled": 10})
        log.write(2000, {"reward/fresh_pair_accuracy": accuracy, "reward/true_correlation": corr, "teacher/labeled": 20,
                         "eval/true_return": 100.0 + seed})
    write_report(tmp_path)
    groups = json.loads((tmp_path / "report.json").read_text())["groups"]
    for preset in ("oracle", "mistake"):
        group = groups[f"teacher.preset={preset}"]
        assert group["fresh_pair_accuracy"] == pytest.approx(np.mean([finals[preset, s][0] for s in (0, 1)]))
        assert group["reward_correlation"] == pytest.approx(np.mean([finals[preset, s][1] for s in (0, 1)]))
    assert "| 20 | 0.890 | 0.60 |" in (tmp_path / "report.md").read_text()
