"""Query selection: the strategy interface, built-ins and the plug-in registry."""

from pbrl.query.base import InvalidSelectionError, QueryConfig, QueryStrategy, validate_selection
from pbrl.query.registry import available, make_strategy, register

__all__ = ["InvalidSelectionError", "QueryConfig", "QueryStrategy", "available", "make_strategy", "register", "validate_selection"]
