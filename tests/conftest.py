"""Test-wide settings (one torch thread for small MLPs on a 2-core CI, headless MuJoCo) and the
pieces many tests share: an rng, a filled transition log, an in-memory preference store and a
tiny feedback loop around them. (The tiny run config lives with the config API's tests.)"""

import os
import sys

os.environ.setdefault("MUJOCO_GL", "egl")

from collections.abc import Callable, Iterator  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)

# absl's log handler (absl comes with tensorboard and dm_control) keeps the sys.stderr of the moment
# absl is first imported — inside a test, that test's capture — and uvicorn's logging.config.dictConfig
# closes every handler, so absl's closed that stream and a later test's capture failed ("I/O operation
# on closed file"). Its stream is the real stderr instead, which absl never closes.
import absl.logging  # noqa: E402

absl.logging.get_absl_handler().python_handler.stream = sys.__stderr__

from pbrl.feedback import FeedbackConfig, FeedbackLoop  # noqa: E402
from pbrl.learners import BTEnsemble, BTEnsembleConfig  # noqa: E402
from pbrl.query import QueryConfig  # noqa: E402
from pbrl.store import PreferenceStore  # noqa: E402
from pbrl.teachers import SyntheticTeacher  # noqa: E402
from pbrl.transitions import TransitionLog  # noqa: E402
from tests.helpers import filled_log  # noqa: E402
from tests.postgres import store_location  # noqa: E402, F401  (a store on SQLite, then on PostgreSQL)


@pytest.fixture
def rng() -> np.random.Generator:
    """A fresh seeded generator (seed 0) per test."""
    return np.random.default_rng(0)


@pytest.fixture
def log() -> TransitionLog:
    """300 steps of fake 100-step episodes, obs_dim 3, act_dim 2, true reward = obs[0] (:func:`tests.helpers.filled_log`)."""
    return filled_log()


@pytest.fixture
def store() -> Iterator[PreferenceStore]:
    """An in-memory preference store, closed after the test."""
    store = PreferenceStore(":memory:")
    yield store
    store.close()


@pytest.fixture
def make_loop(store: PreferenceStore) -> Callable[..., FeedbackLoop]:
    """``make_loop(log, **feedback)``: a feedback loop on ``log`` with a tiny Bradley–Terry learner, the oracle
    and the test's ``store`` (keywords ``learner``, ``teacher``, ``query``, ``store``, ``episode_length``
    replace those; the rest are :class:`FeedbackConfig` fields, by default every step may start a round)."""

    def make(log: TransitionLog, *, learner=None, teacher=None, query: QueryConfig | None = None, store=store,
             episode_length: int = 100, **feedback) -> FeedbackLoop:
        obs_dim, act_dim = log.arrays["obs"].shape[-1], log.arrays["actions"].shape[-1]
        learner = learner or BTEnsemble(obs_dim, act_dim, BTEnsembleConfig(ensemble_size=2, hidden_sizes=(8,), max_epochs=2), seed=0)
        config = FeedbackConfig(**{"first_query_step": 0, "interval": 1, **feedback})
        return FeedbackLoop(config, query or QueryConfig(), learner, teacher or SyntheticTeacher(), store, log,
                            episode_length=episode_length, rng=np.random.default_rng(0))

    return make
