"""The example third-party package in examples/ registers through the entry point and runs in the real loop.

The test "installs" the example the way pip would expose it to ``importlib.metadata``: its
source directory goes on ``sys.path`` next to a ``.dist-info`` directory whose
``entry_points.txt`` is generated from the example's own ``pyproject.toml``. pbrl is not
told about the package in any other way.
"""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path

import numpy as np
import pytest

from pbrl.query import ENTRY_POINT_GROUP, QueryStrategy, available, make_strategy, registry
from pbrl.store import PreferenceStore
from tests.test_query_loop import check_labeled_run, loop_for, tiny_run

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "pbrl-stochastic-query"


@pytest.fixture
def installed_example(tmp_path, monkeypatch):
    project = tomllib.loads((EXAMPLE / "pyproject.toml").read_text())["project"]
    plugins = project["entry-points"][ENTRY_POINT_GROUP]
    dist_info = tmp_path / "site" / f"{project['name'].replace('-', '_')}-{project['version']}.dist-info"
    dist_info.mkdir(parents=True)
    (dist_info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {project['name']}\nVersion: {project['version']}\n")
    lines = [f"[{ENTRY_POINT_GROUP}]"] + [f"{name} = {target}" for name, target in plugins.items()]
    (dist_info / "entry_points.txt").write_text("\n".join(lines) + "\n")
    monkeypatch.syspath_prepend(str(EXAMPLE / "src"))
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry.BUILTIN))  # forget earlier plug-in loads
    yield sorted(plugins)
    for module in [m for m in sys.modules if m.startswith("pbrl_stochastic_query")]:
        monkeypatch.delitem(sys.modules, module)


def test_the_example_declares_its_strategies_under_pbrl_entry_point_group(installed_example):
    assert installed_example == ["smallest-margin", "stochastic-disagreement"]
    assert set(installed_example) <= set(available())
    for name in installed_example:
        strategy = make_strategy(name)
        assert isinstance(strategy, QueryStrategy) and strategy.wants_pool


def test_the_example_strategies_run_through_the_feedback_loop(installed_example):
    for name in installed_example:
        store = PreferenceStore(":memory:")
        loop = loop_for(name, store)
        for step in (100, 200, 300):
            loop.run_round(step=step, recent_returns=[1.0])
        assert store.counts().labeled == 12 and store.last_round() == 2


def test_stochastic_disagreement_is_picky_but_not_greedy(installed_example):
    """Power sampling prefers disputed pairs yet does not always return the top-n."""
    from pbrl_stochastic_query import StochasticDisagreement

    from tests.test_query_strategies import FixedLearner, pool

    std = np.linspace(0.0, 0.3, 40)
    learner = FixedLearner(np.stack([0.5 - std, 0.5 + std]))  # pair i's disagreement grows with i
    candidates = pool(np.zeros((40, 2)))
    picks = [StochasticDisagreement(beta=4.0).select(candidates, learner, 5, np.random.default_rng(s)) for s in range(20)]
    chosen = np.concatenate(picks)
    assert np.mean(chosen >= 20) > 0.85  # mostly the disputed half
    assert len({tuple(sorted(p)) for p in picks}) > 1  # but not always the same five


def test_a_plugin_is_selected_by_name_in_a_training_run(installed_example, tmp_path):
    trainer = tiny_run(tmp_path, "stochastic-disagreement")
    assert type(trainer.loop.strategy).__name__ == "StochasticDisagreement"
    check_labeled_run(tmp_path)
