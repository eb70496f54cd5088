"""The regret teacher (Knox et al., "Models of human preference for learning reward
functions", TMLR 2024): people prefer the segment that deviates less from optimal
behaviour, not the one that collected more reward.

With an expert's optimal advantage ``A*(s, a) = Q*(s, a) − V*(s)`` a segment's negated
regret is ``Σ_t A*(s_t, a_t)`` (exactly so for deterministic transitions), and the
teacher answers

    P[σ¹ ≻ σ²] = logistic(β · (Σ_t A*(s¹_t, a¹_t) − Σ_t A*(s²_t, a²_t))),

``β = ∞`` picking the smaller regret every time. The other B-Pref knobs work as for
:class:`~pbrl.teachers.synthetic.SyntheticTeacher` (they share its decision rule):
myopia γ weights step ``t`` of ``H`` by ``γ^(H−1−t)``, a mistake flips the label with
probability ε, the label is ½ when the two segments' ``Σ A*`` differ by less than
``eps_equal × mean segment return`` (both are in return units), and the teacher skips a
pair when both segments' *partial returns* are ≤ ``eps_skip × mean segment return``
(B-Pref's "nothing happened in either" rule; advantages are ≤ 0 for an optimal expert,
so a threshold on them would skip everything).

Steps in the absorbing state after a true termination (:attr:`Segments.absorbing`,
``feedback.absorbing``) have ``A* = 0`` by definition, whatever the callable says there
(an expert's critic was never trained on them); their true reward is 0 as well.

The advantage is any callable ``(obs [N, d], actions [N, a]) → [N]``: pbrl never imports
an RL library here. ``pbrl.agents.expert.sac_advantage`` turns a SAC checkpoint into one;
tests pass exact tabular advantages. Actions are those the loop logs (normalised to
[−1, 1]), the representation SAC's critic takes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from pbrl.segments import SegmentBatch, Segments
from pbrl.teachers.synthetic import SyntheticTeacher, SyntheticTeacherConfig

Advantage = Callable[[np.ndarray, np.ndarray], np.ndarray]


@dataclass(frozen=True)
class RegretTeacherConfig(SyntheticTeacherConfig):
    """The ``teacher:`` section of ``type: regret``: B-Pref's preset and knobs, and the expert whose
    advantage labels (:mod:`pbrl.agents.expert` turns it into the :data:`Advantage` callable)."""

    expert: str | None = None
    """Path to a SAC agent trained on the true reward (checkpoint/agent.zip of a true-reward SAC run)."""
    expert_samples: int = 16
    """Actions sampled from the expert's policy to estimate E_a'~π Q(s, a') in A*(s, a) = Q(s, a) − E_a' Q(s, a')."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.expert_samples < 1:
            raise ValueError(f"teacher.expert_samples must be ≥ 1, got {self.expert_samples}")


class RegretTeacher(SyntheticTeacher):
    """Labels pairs by the expert's summed optimal advantage, with B-Pref's noise knobs."""

    def __init__(
        self, advantage: Advantage, config: SyntheticTeacherConfig = SyntheticTeacherConfig(), name: str = "regret"
    ) -> None:
        super().__init__(config, name)
        self.advantage = advantage

    def step_advantages(self, segments: Segments) -> np.ndarray:
        """``A*(s_t, a_t)`` of every step, ``[B, T]`` (one call for the whole batch; 0 on absorbing steps)."""
        b, t = segments.obs.shape[:2]
        obs = segments.obs.reshape(b * t, -1)
        actions = segments.actions.reshape(b * t, -1)
        values = np.asarray(self.advantage(obs, actions), dtype=np.float64)
        if values.shape != (b * t,):
            raise ValueError(f"the advantage callable returned shape {values.shape}, expected ({b * t},)")
        return np.where(segments.absorbing, 0.0, values.reshape(b, t))

    def label(self, left: SegmentBatch, right: SegmentBatch, rng: np.random.Generator) -> np.ndarray:
        both = self.step_advantages(Segments.concatenate([left.segments, right.segments]))
        n = len(left)
        return self.choose(both[:n], both[n:], left.truth.returns, right.truth.returns, rng)
