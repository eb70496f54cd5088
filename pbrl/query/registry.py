"""One registry for built-in and third-party query strategies.

Third parties register in their own package's metadata, with no change to pbrl::

    [project.entry-points."pbrl.query_strategies"]
    my-strategy = "my_package.module:MyStrategy"

and then select it by name (``--set query.strategy=my-strategy``).
"""

from __future__ import annotations

from collections.abc import Callable
from importlib.metadata import entry_points

from pbrl.query.base import QueryStrategy
from pbrl.query.builtin import DisagreementStrategy, UniformStrategy

ENTRY_POINT_GROUP = "pbrl.query_strategies"

_REGISTRY: dict[str, Callable[[], QueryStrategy]] = {
    "uniform": UniformStrategy,
    "disagreement": DisagreementStrategy,
}


def register(name: str, factory: Callable[[], QueryStrategy]) -> None:
    """Register a strategy factory under ``name`` (overwrites only if asked twice with the same object)."""
    if name in _REGISTRY and _REGISTRY[name] is not factory:
        raise ValueError(f"query strategy {name!r} is already registered")
    _REGISTRY[name] = factory


def _load_entry_points() -> None:
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name not in _REGISTRY:
            _REGISTRY[ep.name] = ep.load()


def available() -> list[str]:
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
