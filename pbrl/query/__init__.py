"""Query selection: the strategy interface, built-ins and the plug-in registry.

Built-ins: ``uniform``, ``disagreement``, ``entropy``, ``predictive-entropy``, ``bald``, ``kcenter``,
``kcenter-disagreement``, ``kcenter-entropy``, ``qpa``. Writing your own:
``docs/query_strategies.md``.
"""

from pbrl.query.base import (
    InvalidSelectionError,
    QueryConfig,
    QueryContext,
    QueryStrategy,
    function_strategy,
    select_queries,
    validate_selection,
)
from pbrl.query.registry import ENTRY_POINT_GROUP, available, make_strategy, register

__all__ = [
    "ENTRY_POINT_GROUP",
    "InvalidSelectionError",
    "QueryConfig",
    "QueryContext",
    "QueryStrategy",
    "available",
    "function_strategy",
    "make_strategy",
    "register",
    "select_queries",
    "validate_selection",
]
