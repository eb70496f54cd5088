"""The B-Pref scripted teacher (Lee et al., 2021, "B-Pref: Benchmarking Preference-Based
Reinforcement Learning"; reference code rll-research/BPref).

It answers from the segments' true rewards, with five knobs that imitate how people err:

* **rationality β** — Boltzmann choice over the two (myopically discounted) returns,
  ``P[σ¹ ≻ σ²] = exp(β R¹) / (exp(β R¹) + exp(β R²))``; ``β = ∞`` is perfectly rational
  (ties go to the left segment, as in B-Pref), ``β = 0`` answers at random.
* **myopia γ** — step ``t`` of an ``H``-step segment is weighted ``γ^(H−1−t)``, so later
  steps count more: ``R = Σ_t γ^(H−1−t) r_t``.
* **mistake ε** — the label is flipped with probability ε.
* **skip** — no answer when neither segment's (undiscounted) return exceeds
  ``eps_skip × mean segment return``.
* **equal** — label ½ when the undiscounted returns differ by less than
  ``eps_equal × mean segment return``.

The thresholds follow B-Pref: the mean segment return is ``segment_length / episode
length × mean true return of the last 10 episodes``, re-set before every round: ``ε × m``
in every round by default (the paper's definition, ``threshold_rule="paper"``). B-Pref's
PEBBLE code (and QPA's) multiplies by ε twice from the second round on, ``ε² × m``
(``threshold_rule="bpref-code"``): the published B-Pref numbers of the skip and equal
teachers came from that code.
Order of operations as in B-Pref: skip, then Boltzmann/rational choice, mistake flip,
and the equal override last.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from pbrl.segments import SegmentBatch
from pbrl.teachers.base import Teacher


PRESET_NAMES = ("oracle", "stoc", "mistake", "skip", "equal", "myopic")
"""The six teachers of the B-Pref paper."""

KNOBS = ("beta", "gamma", "eps_mistake", "eps_skip", "eps_equal")


@dataclass(frozen=True)
class SyntheticTeacherConfig:
    """B-Pref's teacher: a preset, with any of its five knobs overridden (None = the preset's value).

    This is the ``teacher:`` config section itself (``type: synthetic``); :meth:`resolved` gives
    the knobs in effect, which is what the teacher reads. ``SyntheticTeacherConfig(beta=1.0)``
    is the oracle with β = 1, ``SyntheticTeacherConfig("mistake", eps_mistake=0.2)`` B-Pref's
    mistake teacher with ε = 0.2.
    """

    preset: str = "oracle"
    """B-Pref preset: oracle, stoc (β = 1), mistake (ε = 0.1), skip (eps_skip = 0.1), equal (eps_equal = 0.1), myopic (γ = 0.9); the knobs below override it."""
    beta: float | None = None
    """Rationality β of the Boltzmann choice; inf = always picks the higher return (None = the preset's)."""
    gamma: float | None = None
    """Myopia γ: step t of an H-step segment is weighted γ^(H−1−t) (None = the preset's)."""
    eps_mistake: float | None = None
    """Probability of flipping the label (None = the preset's)."""
    eps_skip: float | None = None
    """Skip when both returns are below eps_skip × mean segment return (None = the preset's)."""
    eps_equal: float | None = None
    """Label ½ when returns differ by less than eps_equal × mean segment return (None = the preset's)."""
    threshold_rule: str = "paper"
    """'paper': skip/equal thresholds ε × m in every round (B-Pref's paper). 'bpref-code': ε × m in the first round, ε² × m from the second (B-Pref train_PEBBLE.py L275–276 with the setters reward_model.py L152–156 multiply by ε twice; QPA train_QPA.py L246–247 too), the code behind the published skip/equal numbers."""

    def __post_init__(self) -> None:
        if self.threshold_rule not in ("paper", "bpref-code"):
            raise ValueError(f"teacher.threshold_rule must be 'paper' or 'bpref-code', got {self.threshold_rule!r}")
        if self.preset not in PRESET_NAMES:
            raise ValueError(f"teacher.preset={self.preset!r} is unknown; choose one of {sorted(PRESET_NAMES)}")
        knobs = self.resolved()
        checks = {
            "beta": knobs.beta >= 0,
            "gamma": 0 < knobs.gamma <= 1,
            "eps_mistake": 0 <= knobs.eps_mistake <= 1,
            "eps_skip": knobs.eps_skip >= 0,
            "eps_equal": knobs.eps_equal >= 0,
        }
        for name, ok in checks.items():
            if not ok:
                raise ValueError(
                    f"teacher.{name}={getattr(knobs, name)} is out of range "
                    "(beta ≥ 0, 0 < gamma ≤ 1, 0 ≤ eps_mistake ≤ 1, eps_skip ≥ 0, eps_equal ≥ 0)"
                )

    def resolved(self) -> "SyntheticTeacherConfig":
        """The same config (same type) with every knob set: the preset's value where this one has None."""
        unset = {name: getattr(PRESETS[self.preset], name) for name in KNOBS if getattr(self, name) is None}
        return replace(self, **unset) if unset else self


_ORACLE = SyntheticTeacherConfig("oracle", beta=math.inf, gamma=1.0, eps_mistake=0.0, eps_skip=0.0, eps_equal=0.0)

#: The six teachers of the B-Pref paper, by name, every knob set.
PRESETS: dict[str, SyntheticTeacherConfig] = {
    "oracle": _ORACLE,
    "stoc": replace(_ORACLE, preset="stoc", beta=1.0),
    "mistake": replace(_ORACLE, preset="mistake", eps_mistake=0.1),
    "skip": replace(_ORACLE, preset="skip", eps_skip=0.1),
    "equal": replace(_ORACLE, preset="equal", eps_equal=0.1),
    "myopic": replace(_ORACLE, preset="myopic", gamma=0.9),
}


class SyntheticTeacher(Teacher):
    """Scripted teacher labeling from true rewards with B-Pref's noise model."""

    def __init__(self, config: SyntheticTeacherConfig = SyntheticTeacherConfig(), name: str = "synthetic") -> None:
        self.config = config.resolved()  # every knob set
        self.name = name
        self.skip_threshold = 0.0
        self.equal_threshold = 0.0

    def calibrate(self, mean_segment_return: float, round_index: int = 0) -> None:
        cfg = self.config
        twice = cfg.threshold_rule == "bpref-code" and round_index > 0
        self.skip_threshold = cfg.eps_skip * (cfg.eps_skip if twice else 1.0) * mean_segment_return
        self.equal_threshold = cfg.eps_equal * (cfg.eps_equal if twice else 1.0) * mean_segment_return

    def label(self, left: SegmentBatch, right: SegmentBatch, rng: np.random.Generator) -> np.ndarray:
        return self.label_rewards(left.truth.rewards, right.truth.rewards, rng)

    def label_rewards(self, rewards_left: np.ndarray, rewards_right: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Labels from ``[B, H]`` true reward arrays (the teacher's whole decision rule)."""
        r1 = np.asarray(rewards_left, dtype=np.float64)
        r2 = np.asarray(rewards_right, dtype=np.float64)
        return self.choose(r1, r2, r1.sum(axis=1), r2.sum(axis=1), rng)

    def choose(
        self, values_left: np.ndarray, values_right: np.ndarray, shown_left: np.ndarray, shown_right: np.ndarray,
        rng: np.random.Generator,
    ) -> np.ndarray:
        """B-Pref's knobs on per-step values ``[B, H]`` (true rewards here; the regret teacher passes
        advantages): Boltzmann/rational choice on the myopically weighted sums, mistake flip,
        ½ when the undiscounted sums differ by less than the equal threshold, and a skip when
        both segments' ``shown`` scores ``[B]`` (their partial returns) are ≤ the skip threshold."""
        cfg = self.config
        r1, r2 = values_left, values_right
        return1, return2 = r1.sum(axis=1), r2.sum(axis=1)

        horizon = r1.shape[1]
        weights = cfg.gamma ** np.arange(horizon - 1, -1, -1, dtype=np.float64)  # γ^(H−1−t)
        discounted1, discounted2 = r1 @ weights, r2 @ weights

        if math.isinf(cfg.beta):
            labels = (discounted1 >= discounted2).astype(np.float64)
        else:
            p_left = 1.0 / (1.0 + np.exp(-cfg.beta * (discounted1 - discounted2)))
            labels = (rng.random(len(p_left)) < p_left).astype(np.float64)

        flip = rng.random(len(labels)) < cfg.eps_mistake
        labels[flip] = 1.0 - labels[flip]

        if self.equal_threshold > 0:
            labels[np.abs(return1 - return2) < self.equal_threshold] = 0.5
        if self.skip_threshold > 0:
            labels[np.maximum(shown_left, shown_right) <= self.skip_threshold] = np.nan
        return labels
