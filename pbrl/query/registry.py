"""One registry for built-in and third-party query strategies.

Third parties register in their own package's metadata, with no change to pbrl::

    [project.entry-points."pbrl.query_strategies"]
    my-strategy = "my_package.module:MyStrategy"

and then select it by name (``--query my-strategy`` or ``--set query.strategy=my-strategy``).
The entry point names a :class:`~pbrl.query.base.QueryStrategy` subclass or any zero-argument
factory returning one (``function_strategy`` turns a plain function into such a class).
In-process code may call :func:`register` instead.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib.metadata import entry_points

from pbrl.query.base import QueryStrategy
from pbrl.query.builtin import (
    BALDStrategy,
    DisagreementStrategy,
    EntropyStrategy,
    PredictiveEntropyStrategy,
    UniformStrategy,
)
from pbrl.query.coverage import KCenterDisagreementStrategy, KCenterEntropyStrategy, KCenterStrategy
from pbrl.query.qpa import QPAStrategy

ENTRY_POINT_GROUP = "pbrl.query_strategies"

BUILTIN: dict[str, Callable[[], QueryStrategy]] = {
    "uniform": UniformStrategy,
    "disagreement": DisagreementStrategy,
    "entropy": EntropyStrategy,
    "predictive-entropy": PredictiveEntropyStrategy,
    "bald": BALDStrategy,
    "kcenter": KCenterStrategy,
    "kcenter-disagreement": KCenterDisagreementStrategy,
    "kcenter-entropy": KCenterEntropyStrategy,
    "qpa": QPAStrategy,
}

_REGISTRY: dict[str, Callable[[], QueryStrategy]] = dict(BUILTIN)


def register(name: str, factory: Callable[[], QueryStrategy]) -> None:
    """Register a strategy factory under ``name`` (registering the same object twice is a no-op)."""
    if name in _REGISTRY and _REGISTRY[name] is not factory:
        raise ValueError(f"query strategy {name!r} is already registered")
    _REGISTRY[name] = factory


def _load_entry_points() -> None:
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name in _REGISTRY:
            continue
        try:
            _REGISTRY[ep.name] = ep.load()
        except Exception as error:  # a broken plug-in must say which one it is
            raise ImportError(
                f"query strategy plug-in {ep.name!r} ({ep.value}, entry point group {ENTRY_POINT_GROUP!r}) "
                f"failed to load: {error}"
            ) from error


def available() -> list[str]:
    """Names of every registered strategy, built-in and plug-in."""
    _load_entry_points()
    return sorted(_REGISTRY)


def make_strategy(name: str) -> QueryStrategy:
    """Build a registered strategy by name."""
    if name not in _REGISTRY:
        _load_entry_points()
    if name not in _REGISTRY:
        raise ValueError(
            f"unknown query strategy {name!r}; available: {', '.join(available())}. "
            f"Third-party strategies register through the {ENTRY_POINT_GROUP!r} entry-point group."
        )
    strategy = _REGISTRY[name]()
    if not isinstance(strategy, QueryStrategy):
        raise TypeError(f"query strategy {name!r} built a {type(strategy).__name__}, not a pbrl QueryStrategy")
    return strategy
