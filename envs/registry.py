"""Env ids: which ones exist, how they are spelled, and the errors for the ones that don't.

Every env pbrl can make has one id of the form ``<suite>:<name>``:

- ``gym:<Gymnasium MuJoCo v5 id>``, e.g. ``gym:HalfCheetah-v5``;
- ``metaworld:<task>-v3``, e.g. ``metaworld:door-open-v3`` (all 50 MetaWorld v3 tasks);
- ``dmc:<domain>-<task>``, e.g. ``dmc:walker-walk`` (the DeepMind Control suite).

The lists come from the installed packages (Gymnasium's registry, MetaWorld's task dict)
except DMC's, which is fixed in :mod:`pbrl.envs.dmc` so that it is known without the optional
``dmc`` extra installed.
"""

from __future__ import annotations

import difflib
import functools
import textwrap
from dataclasses import dataclass
from typing import Callable, Literal

from pbrl.envs.dmc import DMC_TASKS

Suite = Literal["gym", "metaworld", "dmc"]
SUITES: tuple[Suite, ...] = ("gym", "metaworld", "dmc")

_SPELLING = (
    "Env ids are spelled '<suite>:<name>': 'gym:<Gymnasium MuJoCo v5 id>' (e.g. "
    "'gym:HalfCheetah-v5'), 'metaworld:<task>-v3' (e.g. 'metaworld:door-open-v3'), "
    "'dmc:<domain>-<task>' (e.g. 'dmc:walker-walk')."
)


class UnknownEnvError(ValueError):
    """Raised for an env id that pbrl cannot make; the message lists every valid id."""


@dataclass(frozen=True)
class EnvId:
    """A validated env id split into its suite and the suite's own name for the env."""

    suite: Suite
    name: str

    def __str__(self) -> str:
        return f"{self.suite}:{self.name}"


@functools.cache
def _gym_names() -> tuple[str, ...]:
    """Gymnasium's MuJoCo v5 envs (the ones with a MuJoCo simulator to snapshot)."""
    import gymnasium as gym

    return tuple(
        sorted(
            env_id
            for env_id, spec in gym.registry.items()
            if env_id.endswith("-v5")
            and isinstance(spec.entry_point, str)
            and spec.entry_point.startswith("gymnasium.envs.mujoco")
        )
    )


@functools.cache
def _metaworld_names() -> tuple[str, ...]:
    """MetaWorld's v3 tasks (importing metaworld takes ~0.6 s, so only when asked)."""
    from metaworld.env_dict import ALL_V3_ENVIRONMENTS

    return tuple(sorted(ALL_V3_ENVIRONMENTS))


def _dmc_names() -> tuple[str, ...]:
    return tuple(sorted(DMC_TASKS))


_NAMES: dict[Suite, Callable[[], tuple[str, ...]]] = {
    "gym": _gym_names,
    "metaworld": _metaworld_names,
    "dmc": _dmc_names,
}


def available_env_ids() -> list[str]:
    """Every id :func:`pbrl.envs.make` accepts, sorted (DMC ids are listed even without shimmy)."""
    return sorted(f"{suite}:{name}" for suite in SUITES for name in _NAMES[suite]())


def parse_env_id(env_id: str) -> EnvId:
    """Split and validate ``env_id``; raise :class:`UnknownEnvError` saying how to fix it."""
    if not isinstance(env_id, str):
        raise TypeError(f"env id must be a str like 'gym:HalfCheetah-v5', got {env_id!r}")
    suite, sep, name = env_id.partition(":")
    if not sep:
        raise UnknownEnvError(_message(f"Env id {env_id!r} has no suite prefix.", env_id))
    if suite not in SUITES:
        raise UnknownEnvError(
            _message(f"Env id {env_id!r} names an unknown suite {suite!r}.", name)
        )
    if name not in _NAMES[suite]():
        raise UnknownEnvError(_message(f"Unknown env id {env_id!r}.", env_id))
    return EnvId(suite, name)  # type: ignore[arg-type]


def suite_of(env_id: str) -> Suite:
    """The suite (``"gym"``, ``"metaworld"`` or ``"dmc"``) of a valid env id."""
    return parse_env_id(env_id).suite


def _suggestions(query: str) -> list[str]:
    """Valid ids close to ``query``, which may lack or misspell its suite prefix."""
    ids = available_env_ids()
    by_lower_name = {i.partition(":")[2].lower(): i for i in ids}
    bare = query.partition(":")[2] if ":" in query else query
    if bare.lower() in by_lower_name:
        return [by_lower_name[bare.lower()]]
    close_names = difflib.get_close_matches(bare.lower(), list(by_lower_name), n=3, cutoff=0.75)
    return [by_lower_name[n] for n in close_names]


def _message(problem: str, query: str) -> str:
    """The full error text: the problem, a did-you-mean, the spelling rule, all valid ids."""
    lines = [problem]
    suggestions = _suggestions(query)
    if suggestions:
        lines.append("Did you mean " + " or ".join(repr(s) for s in suggestions) + "?")
    lines.append(_SPELLING)
    lines.append("Valid ids:")
    for suite in SUITES:
        names = _NAMES[suite]()
        listing = ", ".join(f"{suite}:{n}" for n in names)
        lines.append(
            textwrap.fill(
                f"{suite} ({len(names)}): {listing}",
                width=100,
                initial_indent="  ",
                subsequent_indent="    ",
                break_on_hyphens=False,
            )
        )
    return "\n".join(lines)
