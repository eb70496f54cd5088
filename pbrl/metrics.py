"""Scalars that tell whether preference learning works (computed from ground truth)."""

from __future__ import annotations

import numpy as np


def pearson(x: np.ndarray, y: np.ndarray) -> float:
    """Pearson correlation; NaN when either side is constant or empty."""
    x = np.asarray(x, dtype=np.float64).ravel()
    y = np.asarray(y, dtype=np.float64).ravel()
    if len(x) < 2 or x.std() == 0 or y.std() == 0:
        return float("nan")
    return float(np.corrcoef(x, y)[0, 1])


def preference_accuracy(p_left: np.ndarray, labels: np.ndarray) -> float:
    """Share of decided labels (0 or 1; ½ and skips ignored) the model predicts: ``(p > ½) == label``."""
    p_left, labels = np.asarray(p_left), np.asarray(labels)
    decided = (labels == 0.0) | (labels == 1.0)
    if not decided.any():
        return float("nan")
    return float(((p_left[decided] > 0.5) == (labels[decided] == 1.0)).mean())
