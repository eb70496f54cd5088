"""Example pbrl query-strategy plug-in (see pbrl's docs/query_strategies.md)."""

from pbrl_stochastic_query.strategy import StochasticDisagreement, smallest_margin

__all__ = ["StochasticDisagreement", "smallest_margin"]
