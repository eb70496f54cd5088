"""Registries: a config section's ``type`` name → its config dataclass and its factory.

Three registries hold what a run is assembled from — :data:`LEARNERS`, :data:`TEACHERS`
and :data:`AGENTS` — and one holds SAC's implementations (:data:`SAC_IMPLS`, chosen by
``agent.impl``). A run config's ``learner:``, ``teacher:`` and ``agent:`` sections each carry
``type:``; the registered dataclass lists exactly the keys that section may hold (with a
docstring under each), and the factory turns the parsed section into the object::

    from pbrl.registry import LEARNERS, register_learner

    register_learner("surf", SURFConfig, lambda config, ctx: SURF(ctx.obs_dim, ctx.act_dim, config, ctx.seed),
                     summary="SURF: semi-supervised reward learning with augmented pairs")

The built-ins are registered in :mod:`pbrl.catalog`, loaded on the first lookup; a new
learner, teacher or agent is one new module plus one ``register_*`` line there (or in a
plug-in that registers before the run is configured). The query-strategy registry
(:mod:`pbrl.query.registry`) follows the same pattern.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class ConfigError(ValueError):
    """A configuration key or value that pbrl cannot use (the message names the key and the fix)."""


@dataclass(frozen=True)
class BuildContext:
    """What a factory may need besides its own section: the env's shapes and the run's seed."""

    env_id: str
    """Environment id, e.g. ``gym:HalfCheetah-v5``."""
    obs_dim: int
    """Observation size."""
    act_dim: int
    """Action size (actions are normalised to [−1, 1] for learners)."""
    episode_length: int
    """The env's time limit (steps per episode)."""
    seed: int = 0
    """The run's seed."""
    segment_length: int = 50
    """Steps per queried segment (``feedback.segment_length``)."""
    budget: int | None = None
    """The run's query budget (``feedback.budget``; None offline)."""
    hybrid_replay_window: int | None = None
    """Rows (per env) of QPA's hybrid replay window, tied to the query window (:func:`pbrl.query.qpa.hybrid_replay_window`; None without queries)."""


@dataclass(frozen=True)
class Registered(Generic[T]):
    """One registered type."""

    name: str
    """The ``type:`` value that selects it."""
    config: type
    """Dataclass of the section's keys (without ``type``); instantiated from the YAML/``--set`` values."""
    factory: Callable[..., T]
    """Builds the object from a parsed section (signature per registry, see :data:`LEARNERS` etc.)."""
    summary: str
    """One line for ``pbrl config --describe``."""
    traits: dict[str, Any] = field(default_factory=dict)
    """Facts the runner needs before building (learners: ``reward_free``; agents: ``on_policy``)."""


class Registry(Generic[T]):
    """Name → :class:`Registered`, for the config section ``section`` (its ``type`` key)."""

    def __init__(self, section: str) -> None:
        self.section = section
        self._entries: dict[str, Registered[T]] = {}

    def register(self, name: str, config: type, factory: Callable[..., T], summary: str = "", **traits: Any) -> None:
        """Add ``name``; registering a name twice is refused (pick another name)."""
        if name in self._entries:
            raise ValueError(f"{self.section}.type={name!r} is already registered")
        clash = [e.name for e in self._entries.values() if e.config is config and config is not type(None)]
        if clash:  # a parsed section names its type by its class: one class, one name
            raise ValueError(f"{self.section}.type={name!r}: {config.__name__} is already registered as {clash[0]!r}; subclass it")
        self._entries[name] = Registered(name, config, factory, summary, dict(traits))

    def get(self, name: str) -> Registered[T]:
        """The entry for ``name``, or a :class:`ConfigError` listing the registered names."""
        _load_builtins()
        if name not in self._entries:
            raise ConfigError(f"{self.section}.type={name!r} is unknown; choose one of {self.names()}")
        return self._entries[name]

    def names(self) -> list[str]:
        _load_builtins()
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        _load_builtins()
        return name in self._entries


#: Learners: ``factory(section, ctx: BuildContext) -> PreferenceLearner``; trait ``reward_free``
#: (True: the learner owns its policy, no agent section; False: a reward for an agent).
LEARNERS: Registry[Any] = Registry("learner")
#: Teachers: ``factory(section, ctx: BuildContext) -> Teacher``.
TEACHERS: Registry[Any] = Registry("teacher")
#: SB3 agents: ``factory(section, ctx: BuildContext) -> SB3Agent`` (:mod:`pbrl.agents.base`);
#: trait ``on_policy``.
AGENTS: Registry[Any] = Registry("agent")
#: SAC implementations (``agent.impl``): ``factory(env, section, seed, algorithm) -> SAC-like model``.
SAC_IMPLS: Registry[Any] = Registry("agent.impl")


def register_learner(name: str, config: type, factory: Callable[..., Any], summary: str = "", reward_free: bool = False) -> None:
    """Register a preference learner under ``learner.type=name``."""
    LEARNERS.register(name, config, factory, summary, reward_free=reward_free)


def register_teacher(name: str, config: type, factory: Callable[..., Any], summary: str = "") -> None:
    """Register a teacher under ``teacher.type=name``."""
    TEACHERS.register(name, config, factory, summary)


def register_agent(name: str, config: type, factory: Callable[..., Any], summary: str = "", on_policy: bool = False) -> None:
    """Register an SB3 agent under ``agent.type=name``."""
    AGENTS.register(name, config, factory, summary, on_policy=on_policy)


def register_sac_impl(name: str, factory: Callable[..., Any], summary: str = "", model_class: type | None = None) -> None:
    """Register a SAC implementation under ``agent.impl=name`` (e.g. a GPU-resident fast SAC);
    ``model_class`` is the class whose ``load`` restores a run it built (None: SB3's SAC)."""
    SAC_IMPLS.register(name, type(None), factory, summary, model_class=model_class)


_loaded = False


def _load_builtins() -> None:
    """Import the built-in registrations once: :mod:`pbrl.catalog` (learners, teachers) and
    :mod:`pbrl.agents.catalog` (SB3 agents, SAC implementations). Lazy — at the first lookup, not
    at import — so the core never imports the agent layer at module level and no cycle forms."""
    global _loaded
    if not _loaded:
        _loaded = True
        import pbrl.agents.catalog  # noqa: F401
        import pbrl.catalog  # noqa: F401
