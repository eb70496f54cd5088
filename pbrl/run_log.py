"""``metrics.jsonl``: one JSON object per logging event, appended and flushed at once.

Tensorboard and CSV come from stable-baselines3's logger; this file is the format that
scripts, plots and reports read (no tensorboard parsing needed).
"""

from __future__ import annotations

import json
import math
import os
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

    def truncate(self, last_step: int) -> None:
        """Drop the rows after ``last_step`` (a resumed run repeats the steps after its checkpoint;
        their old rows would show twice, and a kill may have cut the last one short). Rewritten atomically."""
        kept = []
        for line in self.path.read_text().splitlines() if self.path.exists() else []:
            try:
                row = json.loads(line)
            except json.JSONDecodeError:  # the half-written last line of a killed run
                continue
            if row["step"] <= last_step:
                kept.append(line + "\n")
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text("".join(kept))
        os.replace(tmp, self.path)

    def read(self) -> list[dict]:
        if not self.path.exists():
            return []
        return [json.loads(line) for line in self.path.read_text().splitlines() if line.strip()]
