"""People label a collected dataset: `pbrl collect` a tiny MetaWorld dataset, serve its pairs, three
simulated annotators answer over HTTP (good, random, adversarial), quality control and aggregation,
the answers written back as a dataset that CPL trains on; setup resumable from any kill point."""

from __future__ import annotations

import importlib.util
import json
import urllib.request
import uuid

import numpy as np
import pytest

pytest.importorskip("fastapi")

from pbrl.datasets.human_labels import write_human_dataset  # noqa: E402
from pbrl.datasets.offline import OfflinePreferenceData  # noqa: E402
from pbrl.experiments.cli import main  # noqa: E402
from pbrl.labeling.offline import (  # noqa: E402
    KNOWN_ANSWER, OfflineLabelingConfig, fit_reward_model, open_labels, plan_pairs,
)
from pbrl.labeling.quality import known_answers, quality  # noqa: E402
from pbrl.labeling.render import RenderSettings  # noqa: E402
from pbrl.labeling.server import LabelServer, default_task  # noqa: E402
from pbrl.learners.cpl import CPL, CPLConfig  # noqa: E402

CONFIG = OfflineLabelingConfig(pairs=50, annotators_per_pair=3, known_rate=0.4, seed=1)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """A tiny MetaWorld dataset made by the CLI: scripted expert blended at 3 weights, 10-step segments."""
    path = tmp_path_factory.mktemp("data") / "drawer.h5"
    sets = ["env=metaworld:drawer-open-v3", "expert=scripted", "weights=[0.0,0.5,1.0]", "noise=[0.3]",
            "episodes_per_policy=2", "max_episode_steps=40", "segment_length=10", "segments=60", "pairs=30",
            f"out={path}"]
    assert main(["collect", *[arg for s in sets for arg in ("--set", s)]]) == 0
    return path


def _call(url: str, token: str, body: dict | None = None) -> dict:
    request = urllib.request.Request(url, data=None if body is None else json.dumps(body).encode(),
                                     headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def _answer(url: str, token: str, choose) -> int:  # noqa: ANN001
    """One annotator answers their next pair over HTTP with ``choose(pair, shown_left, shown_right)``; 0 when none is left."""
    pair = _call(f"{url}/api/next", token)["pair"]
    if pair is None:
        return 0
    choice = choose(pair["id"], pair["left"]["segment"], pair["right"]["segment"])
    _call(f"{url}/api/label", token, {"pair": pair["id"], "choice": choice, "request_id": uuid.uuid4().hex})
    return 1


def test_plan_mixes_clear_known_answer_pairs_among_distinct_pairs(dataset):
    data = OfflinePreferenceData.load(dataset)
    plan = plan_pairs(data, CONFIG)
    assert len(plan.left) == 50 and plan.known.sum() == 20 and np.all(plan.left != plan.right)
    assert len({(min(a, b), max(a, b)) for a, b in zip(plan.left, plan.right)}) == 50
    returns = data.segment_batch(np.arange(len(data.segment_episode)), sim_states=False).truth.returns
    gap = np.abs(returns[plan.left] - returns[plan.right])
    assert gap[plan.known].min() >= returns.std() > 0  # known answers are clear, by the margin
    assert 0 < np.flatnonzero(plan.known).min() < 30  # shuffled among the others, not queued last
    with pytest.raises(ValueError, match="known_rate"):
        plan_pairs(data, OfflineLabelingConfig(pairs=50, known_rate=0.9, known_margin=50.0))
    with pytest.raises(ValueError, match="strategy.*reward model"):
        plan_pairs(data, OfflineLabelingConfig(pairs=10, strategy="disagreement"))


def test_a_query_strategy_with_a_reward_model_asks_where_it_is_unsure(dataset):
    from pbrl.learners.bradley_terry import BTEnsembleConfig

    data = OfflinePreferenceData.load(dataset)
    model = fit_reward_model(data, config=BTEnsembleConfig(hidden_sizes=(16,), max_epochs=20))
    spread = lambda plan: model.pair_probabilities(  # noqa: E731
        *(data.segment_batch(ids[~plan.known], sim_states=False).segments for ids in (plan.left, plan.right))).std(0)
    uniform = plan_pairs(data, OfflineLabelingConfig(pairs=20, known_rate=0.2))
    chosen = plan_pairs(data, OfflineLabelingConfig(pairs=20, known_rate=0.2, strategy="disagreement"), model)
    assert chosen.known.sum() == 4 and spread(chosen).mean() > spread(uniform).mean()
    assert spread(chosen).min() >= np.median(spread(uniform))  # top 16 of a pool of 160 random pairs
    with pytest.raises(ValueError, match="strategy .--strategy. 'nosuch' is unknown"):
        OfflineLabelingConfig(strategy="nosuch")


def test_three_annotators_over_http_quality_control_aggregation_and_cpl(dataset, tmp_path, capsys, monkeypatch):
    out = tmp_path / "labels"
    store, data, query_ids = open_labels(dataset, out, CONFIG)
    server = LabelServer(store, out / "videos", default_task(data.env_id), RenderSettings(32, 32), port=0)
    url = server.start()
    tokens = {name: server.queue.add_annotator(name) for name in ("good", "random", "adversarial")}
    truth_return = lambda segment: float(store.segment_batch([segment]).truth.returns[0])  # noqa: E731
    better = lambda left, right: "left" if truth_return(left) > truth_return(right) else "right"  # noqa: E731
    flip = lambda choice: {"left": "right", "right": "left"}[choice]  # noqa: E731
    coin = np.random.default_rng(0).integers(2, size=max(query_ids) + 1)  # random: a fair coin per pair, seeded
    choose = {"good": lambda pair, left, right: better(left, right),
              "random": lambda pair, left, right: better(left, right) if coin[pair] else flip(better(left, right)),
              "adversarial": lambda pair, left, right: flip(better(left, right))}
    try:
        for _ in range(20):  # the three take turns for a while …
            for name, token in tokens.items():
                _answer(url, token, choose[name])
    finally:
        server.stop()
        store.close()

    # … the server is stopped; the same folder resumes with the same pairs, links and labels
    store, data, again = open_labels(dataset, out, CONFIG)
    np.testing.assert_array_equal(again, query_ids)
    assert len(store.execute("SELECT id FROM labels")) == 60
    server = LabelServer(store, out / "videos", default_task(data.env_id), RenderSettings(32, 32), port=0)
    url = server.start()
    try:
        while sum(_answer(url, token, choose[name]) for name, token in tokens.items()):
            pass
    finally:
        server.stop()
    assert len(store.execute("SELECT id FROM labels")) == 3 * 50  # k = 3 answers for every pair, each once

    report = quality(store)
    assert report.annotators["good"].known_accuracy == 1.0 and report.annotators["adversarial"].known_accuracy == 0.0
    assert 0.2 < report.annotators["random"].known_accuracy < 0.75 and report.annotators["random"].known == 20
    assert report.flagged == ["adversarial", "random"]
    assert report.annotators["good"].median_seconds >= 0
    store.close()
    assert main(["labels", str(out), "--agreement"]) == 0
    printed = capsys.readouterr().out
    assert "known-answer accuracy 1.000 on 20" in printed
    assert [line.split(":")[0].strip() for line in printed.splitlines() if "FLAGGED" in line] == ["adversarial", "random"]

    # Dawid–Skene: the good annotator weighs most, the adversarial one is read backwards
    path, human = write_human_dataset(out, tmp_path / "human.h5")
    weights = {name: stats["weight"] for name, stats in human.metadata["teacher"]["annotators"].items()}
    assert max(weights, key=weights.get) == "good" and weights["adversarial"] < 0
    returns = human.segment_batch(np.arange(len(human.segment_episode)), sim_states=False).truth.returns
    true_labels = (returns[human.left] > returns[human.right]).astype(np.float32)
    assert len(human.labels) == 50 and np.mean(human.labels == true_labels) == 1.0
    _, by_majority = write_human_dataset(out, tmp_path / "majority.h5", method="majority")
    assert np.mean(by_majority.labels == true_labels) < 0.9  # good and adversarial cancel: the random one decides
    _, without = write_human_dataset(out, tmp_path / "dropped.h5", method="majority", drop_flagged=True)
    assert without.metadata["teacher"]["dropped"] == ["adversarial", "random"]
    np.testing.assert_array_equal(without.labels, true_labels)
    assert main(["labels", str(out), "--write", str(tmp_path / "cli.h5"), "--aggregate", "majority",
                 "--drop", "random", "--drop", "adversarial"]) == 0
    assert OfflinePreferenceData.load(tmp_path / "cli.h5").labels.tobytes() == without.labels.tobytes()

    # the written file is a dataset like any other: CPL trains on it
    back = OfflinePreferenceData.load(path)
    assert back.metadata["teacher"]["type"] == "human" and back.metadata["labeling"]["known_answer_pairs"] == 20
    prefs = back.preferences()
    config = CPLConfig(hidden_sizes=(32,), dropout=0.0, batch_size=16, steps_per_update=100, lr=3e-3, bc_steps=0,
                       warmup_steps=10)
    cpl = CPL(prefs.left.obs.shape[-1], prefs.left.actions.shape[-1], config, seed=0)
    accuracy = lambda: np.mean((cpl.preference_probability(prefs.left, prefs.right) > 0.5) == (prefs.labels > 0.5))  # noqa: E731
    before = accuracy()
    metrics = cpl.update(prefs)
    assert np.isfinite(metrics["cpl_loss"]) and accuracy() >= before + 0.25  # it learns the people's order

    if importlib.util.find_spec("minari") is not None:  # the Minari export carries the people's labels
        from pbrl.datasets.minari_export import PREFERENCES_FILE, to_minari

        monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "minari"))
        with np.load(to_minari(back, "pbrl/drawer-open/human-v0") / PREFERENCES_FILE) as exported:
            assert exported["label"].tobytes() == back.labels.tobytes()
            np.testing.assert_array_equal(exported["left"], back.left)
            assert json.loads(str(exported["metadata"]))["teacher"]["annotators"]["good"]["weight"] == weights["good"]


def test_setup_resumes_from_any_kill_point_and_refuses_other_settings(dataset, tmp_path, monkeypatch, capsys):
    from pbrl.store import PreferenceStore

    calls = {"n": 0}
    original = PreferenceStore.add_queries

    def dies_on_third(self, *args, **kwargs):  # noqa: ANN001
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt("killed")
        return original(self, *args, **kwargs)

    monkeypatch.setattr(PreferenceStore, "add_queries", dies_on_third)
    with pytest.raises(KeyboardInterrupt):
        open_labels(dataset, tmp_path / "labels", CONFIG)
    monkeypatch.setattr(PreferenceStore, "add_queries", original)
    store, _, query_ids = open_labels(dataset, tmp_path / "labels", CONFIG)
    assert len(query_ids) == len(set(query_ids.tolist())) == 50
    assert store.execute("SELECT COUNT(*) FROM queries")[0][0] == 50  # nothing added twice
    assert store.execute("SELECT COUNT(*) FROM label_queue")[0][0] == 50
    assert len(known_answers(store)) == 20
    assert store.execute(f"SELECT COUNT(*) FROM queries WHERE teacher = '{KNOWN_ANSWER}'")[0][0] == 20
    segments = store.execute("SELECT episode, start FROM segments")
    assert len(segments) == len(set(segments))  # each dataset segment stored once
    store.close()
    with pytest.raises(ValueError, match="annotators_per_pair"):
        open_labels(dataset, tmp_path / "labels", OfflineLabelingConfig(pairs=50, annotators_per_pair=2,
                                                                          known_rate=0.4, seed=1))
    for argv, message in (
        (["label-server", "--dataset", str(dataset), "--out", str(tmp_path / "x"), "--known-rate", "1.5"], "--known-rate"),
        (["label-server", "--dataset", str(dataset)], "--out"),
        (["label-server", "--dataset", str(tmp_path / "missing.h5"), "--out", str(tmp_path / "x")], "pbrl collect"),
        (["label-server", "--dataset", str(dataset), "--out", str(tmp_path / "labels"), "--pairs", "40"], "pairs"),
        (["labels", str(tmp_path / "labels"), "--write", str(tmp_path / "o.h5"), "--drop", "nobody"], "--drop nobody"),
    ):
        assert main(argv) == 2
        assert message in capsys.readouterr().err.splitlines()[-1]
    assert not (tmp_path / "o.h5").exists()


def _lines_until(process, pattern: str) -> list[str]:  # noqa: ANN001
    """The server's output lines up to the first that contains ``pattern``."""
    lines = []
    while pattern not in (line := process.stdout.readline()):
        assert line, f"the label server exited: {''.join(lines)}"
        lines.append(line)
    return [*lines, line]


def test_cli_server_killed_outright_resumes_with_every_label(dataset, tmp_path):
    import re
    import subprocess
    import sys

    out = tmp_path / "labels"
    command = [sys.executable, "-m", "pbrl.experiments.cli", "label-server", "--dataset", str(dataset), "--out", str(out),
               "--port", "0", "--size", "32"]
    first = subprocess.Popen([*command, "--pairs", "6", "--annotators-per-pair", "1", "--known-rate", "0", "--add",
                              "ann"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        link = re.search(r"ann: (http://\S+)/\?token=(\S+)", "".join(_lines_until(first, "ann:")))
        url, token = link[1], link[2]
        from pbrl.store import PreferenceStore

        store = PreferenceStore(out / "preferences.sqlite")
        left_better = lambda pair, left, right: "left"  # noqa: E731
        assert _answer(url, token, left_better) + _answer(url, token, left_better) == 2
    finally:
        first.kill()  # no chance to clean up
        first.wait()
    second = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)  # settings recorded
    try:
        url = re.search(r"at (http://\S+)/ ", "".join(_lines_until(second, "labeling page")))[1]
        answered = 0
        while _answer(url, token, left_better):  # the same link works; the answered pairs are not served again
            answered += 1
        assert answered == 4
    finally:
        second.kill()
        second.wait()
    rows = store.execute("SELECT query_id, annotator FROM labels")
    assert len(rows) == 6 and len({query for query, _ in rows}) == 6 and {who for _, who in rows} == {"ann"}
    store.close()
