"""pbrl — preference-based reinforcement learning.

The public API, importable from here::

    from pbrl import Runner, parse_config
    config = parse_config({"env": "gym:Hopper-v5"}, ["learner.type=bt", "teacher.preset=stoc", "steps=20000"])
    summary = Runner(config, "runs/hopper").train()

Names resolve lazily (PEP 562), so ``import pbrl`` stays light and the core never imports the
agent or application layers at module level.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_EXPORTS = {
    # running
    "Runner": "pbrl.experiments.runner",
    "TrainConfig": "pbrl.experiments.config",
    "parse_config": "pbrl.experiments.config",
    "load_run_config": "pbrl.experiments.config",
    # extending
    "register_learner": "pbrl.registry",
    "register_teacher": "pbrl.registry",
    "register_agent": "pbrl.registry",
    "register_sac_impl": "pbrl.registry",
    "register_strategy": "pbrl.query",
    # the pieces
    "PreferenceStore": "pbrl.store",
    "TransitionLog": "pbrl.transitions",
    "FeedbackLoop": "pbrl.feedback",
    "Segments": "pbrl.segments",
    "SegmentTruth": "pbrl.segments",
    "PreferenceDataset": "pbrl.segments",
    "SyntheticTeacher": "pbrl.teachers.synthetic",
    "BTEnsemble": "pbrl.learners.bradley_terry",
    "make_strategy": "pbrl.query",
}

__all__ = sorted(_EXPORTS)


_RENAMED = {"register_strategy": "register"}  # exported name → its name in the module


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(import_module(_EXPORTS[name]), _RENAMED.get(name, name))
        globals()[name] = value
        return value
    raise AttributeError(f"module 'pbrl' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
