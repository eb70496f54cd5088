"""The one-screen summary printed at the end of a run (any method: SB3 and reward-free runs alike)."""

from __future__ import annotations

import math
from pathlib import Path

from pbrl.experiments.config import TrainConfig


def _fmt(value: float | None, spec: str = ".3f") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return format(value, spec)


def format_summary(summary: dict[str, float], run_dir: Path, config: TrainConfig) -> str:
    reward_free = config.reward_free_learner
    unit = "gradient steps" if config.offline else "env steps"
    heldout = summary.get("reward/heldout_accuracy", summary.get("policy/heldout_accuracy"))
    rows = [
        ("environment / method", f"{config.env} / {config.method}"),
        (unit, _fmt(summary.get("steps"), ".0f")),
        ("wall time", f"{_fmt(summary.get('time/wall_seconds'), '.0f')} s"),
        ("eval true return", f"{_fmt(summary.get('eval/true_return'), '.1f')} ± {_fmt(summary.get('eval/true_return_std'), '.1f')}"),
        ("eval success rate", _fmt(summary.get("eval/success_rate"), ".2f")),
        ("train true return (last 10 ep.)", _fmt(summary.get("train/true_episode_return"), ".1f")),
        ("queries asked / labeled", f"{_fmt(summary.get('teacher/asked'), '.0f')} / {_fmt(summary.get('teacher/labeled'), '.0f')}"),
        ("held-out preference accuracy", _fmt(heldout)),
        ("reward accuracy on fresh random pairs", _fmt(summary.get("reward/fresh_pair_accuracy"))),
        ("reward train accuracy", _fmt(summary.get("reward/train_accuracy"))),
        ("learned vs true reward corr.", _fmt(summary.get("reward/true_correlation"))),
        ("env steps / s (last interval)", _fmt(summary.get("time/env_steps_per_second"), ".0f")),
    ]
    width = max(len(k) for k, _ in rows)
    lines = ["", "pbrl run summary", "-" * (width + 24)]
    lines += [f"{k.ljust(width)}  {v}" for k, v in rows]
    lines += [
        "-" * (width + 24),
        f"run directory: {run_dir}",
        f"curves:        {run_dir / 'curves.png'}",
        *([] if reward_free else [f"tensorboard:   tensorboard --logdir {run_dir / 'logs'}"]),  # SB3's logger writes logs/
        f"train longer:  pbrl resume {run_dir} --steps N   (N: the new total of {unit})",
        "",
    ]
    return "\n".join(lines)
