"""``metrics.jsonl``: one JSON object per logging event, appended and flushed at once.

Tensorboard and CSV come from stable-baselines3's logger; this file is the format that
scripts, plots and reports read (no tensorboard parsing needed).
"""

from __future__ import annotations

import json
import math
import os
import time
import warnings
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
        for line in self.path.read_text(errors="replace").splitlines() if self.path.exists() else []:
            row = _row(line)  # None: the half-written last line of a killed run, or garbage
            if row is not None and row["step"] <= last_step:
                kept.append(line + "\n")
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text("".join(kept))
        os.replace(tmp, self.path)

    def read(self) -> list[dict]:
        """Every row; a line that is not a JSON object with a step (a damaged file) is skipped with a warning."""
        if not self.path.exists():
            return []
        rows, bad = [], []
        for number, line in enumerate(self.path.read_text(errors="replace").splitlines(), 1):
            row = _row(line)
            if row is not None:
                rows.append(row)
            elif line.strip():
                bad.append(number)
        if bad:
            warnings.warn(f"{self.path}: skipped {len(bad)} line(s) that are not metric rows (first: line {bad[0]})",
                          stacklevel=2)
        return rows


def _row(line: str) -> dict | None:
    """``line`` as a metrics row, or None when it is not a JSON object with an integer ``step``."""
    try:
        row = json.loads(line)
    except ValueError:
        return None
    return row if isinstance(row, dict) and isinstance(row.get("step"), int) else None
