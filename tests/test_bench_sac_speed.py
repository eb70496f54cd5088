"""experiments/bench/sac_speed.py keeps each finished run in a ledger and reuses it only under
the same settings, so the hours-long acceptance run (issue 11) can stop and continue."""

from __future__ import annotations

import json

from pbrl.experiments.bench.sac_speed import SETTINGS, Run, load_runs


def _row(impl: str, seed: int, wall: float, **settings) -> str:
    run = Run(impl=impl, seed=seed, steps=settings["steps"], wall_s=wall, cpu_s=wall, returns=[1.0, 2.0])
    return json.dumps({**settings, **run.__dict__})


def test_a_finished_run_is_reused_only_under_the_same_settings(tmp_path):
    settings = dict(env="gym:HalfCheetah-v5", steps=50_000, device="cpu", execution="auto", precision="float32",
                    learning_starts=1000, eval_episodes=5)
    assert set(settings) == set(SETTINGS)
    ledger = tmp_path / "sac_speed.runs.jsonl"
    assert load_runs(ledger, settings) == []
    ledger.write_text("\n".join([
        _row("sb3", 0, 10.0, **settings),
        _row("fast", 0, 8.0, **{**settings, "precision": "bfloat16"}),  # another bench: not reused
        _row("fast", 0, 9.0, **{**settings, "steps": 5000}),
        _row("sb3", 0, 11.0, **settings),  # the same run again: the last one counts
        _row("fast", 1, 7.0, **settings),
    ]) + "\n")
    runs = {(r.impl, r.seed): r for r in load_runs(ledger, settings)}
    assert set(runs) == {("sb3", 0), ("fast", 1)}
    assert runs["sb3", 0].wall_s == 11.0 and runs["fast", 1].returns == [1.0, 2.0]


def test_an_sb3_run_serves_every_fastsac_variant(tmp_path):
    """SB3 does not read --execution or --precision: its runs are shared by the float32 and bf16 benches."""
    settings = dict(env="gym:HalfCheetah-v5", steps=50_000, device="cpu", execution="auto", precision="float32",
                    learning_starts=1000, eval_episodes=5)
    ledger = tmp_path / "sac_speed.runs.jsonl"
    ledger.write_text("\n".join([
        _row("sb3", 0, 10.0, **{**settings, "precision": "bfloat16", "execution": "eager"}),
        _row("fast", 0, 8.0, **{**settings, "precision": "bfloat16"}),
        _row("sb3", 1, 12.0, **{**settings, "eval_episodes": 10}),  # a setting SB3 reads: not reused
    ]) + "\n")
    assert {(r.impl, r.seed) for r in load_runs(ledger, settings)} == {("sb3", 0)}
