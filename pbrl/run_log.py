"""``metrics.jsonl``: one JSON object per logging event, appended and flushed at once.

Tensorboard and CSV come from stable-baselines3's logger; this file is the format that
scripts, plots and reports read (no tensorboard parsing needed).
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path


class MetricsLog:
    """Append-only JSON-lines log of namespaced scalars."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def write(self, step: int, metrics: dict[str, float]) -> None:
        row = {"step": int(step), "time": time.time()}
        row.update({k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in metrics.items()})
        with self.path.open("a") as f:
            f.write(json.dumps(row) + "\n")

    def read(self) -> list[dict]:
        if not self.path.exists():
            return []
        return [json.loads(line) for line in self.path.read_text().splitlines() if line.strip()]
