"""The human teacher in the loop: a training run served on its own labeling page, answered by a
scripted annotator through the HTTP API by the true reward; and a run killed while it waits."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable

import httpx
import numpy as np

from pbrl import Runner
from pbrl.experiments.config import load_run_config
from pbrl.experiments.label_cli import start_labeling
from pbrl.registry import LEARNERS, BuildContext
from pbrl.store import PreferenceStore
from pbrl.teachers.human import HumanTeacher
from tests.test_training import TINY, tiny

HUMAN = ["teacher.type=human", "teacher.port=0", "teacher.width=32", "teacher.height=32",
         "feedback.budget=10", "steps=500"]  # rounds at steps 300 and 450
LEARN = ["feedback.per_round=20", "feedback.budget=40", "feedback.segment_length=25", "learner.max_epochs=50"]


class ScriptedAnnotator(threading.Thread):
    """Answers every pair it is given by the segments' true returns, over HTTP, until stopped."""

    def __init__(self, url: str | Callable[[], str | None], token: str, store_path, limit: int | None = None):
        """``url`` is the page's address, or a function that returns it once the server is up (else None)."""
        super().__init__(daemon=True)
        self.find = url if callable(url) else lambda: url
        self.url, self.token, self.store_path, self.limit = None, token, store_path, limit
        self.stop, self.answered, self.error = threading.Event(), 0, None

    def run(self) -> None:
        try:
            self._answer()
        except Exception as error:  # noqa: BLE001 (reported by the test)
            self.error = error

    def _answer(self) -> None:
        while self.url is None and not self.stop.is_set():
            self.url = self.find()
            time.sleep(0.05)
        store = PreferenceStore(self.store_path)
        with httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {self.token}"}, timeout=30) as client:
            while not self.stop.is_set() and (self.limit is None or self.answered < self.limit):
                try:
                    pair = client.get("/api/next").raise_for_status().json()["pair"]
                    if pair is None:
                        time.sleep(0.05)
                        continue
                    returns = store.segment_batch([pair["left"]["segment"], pair["right"]["segment"]]).truth.returns
                    choice = {1: "left", -1: "right", 0: "equal"}[int(np.sign(returns[0] - returns[1]))]
                    body = {"pair": pair["id"], "choice": choice, "request_id": uuid.uuid4().hex}
                    client.post("/api/label", json=body).raise_for_status()
                    self.answered += 1
                except httpx.TransportError:  # the run was killed (resume test)
                    time.sleep(0.1)


def _accuracy(learner, log, rng) -> float:
    left, right = log.sample_segments(400, 25, rng), log.sample_segments(400, 25, rng)
    truth = left.truth.returns > right.truth.returns
    p_left = learner.preference_probability(left.segments, right.segments)
    return float(np.mean((p_left > 0.5) == truth))


def test_run_with_the_human_teacher_learns_from_a_scripted_annotator(tmp_path, capsys):
    config = tiny(tmp_path, *HUMAN, *LEARN)
    trainer = Runner(config, tmp_path)
    start_labeling(trainer)  # what `pbrl train --teacher-type human` does: serve from the start, print the links
    teacher = trainer.loop.teacher
    link = teacher.server.links()["annotator"]  # made by this server (the store keeps only the token's digest)
    token = link.split("/?token=")[1]
    assert link == f"{teacher.server.url}/?token={token}" and link in capsys.readouterr().out
    annotator = ScriptedAnnotator(teacher.server.url, token, tmp_path / "preferences.sqlite")
    annotator.start()
    try:
        trainer.train()
    finally:
        annotator.stop.set()
        annotator.join(10)
        teacher.close()

    store = PreferenceStore(tmp_path / "preferences.sqlite")
    counts = store.counts()
    assert annotator.error is None and annotator.answered == 40
    assert counts.asked == 40 and counts.labeled + counts.skipped == 40
    rounds = [r for r in map(json.loads, (tmp_path / "metrics.jsonl").read_text().splitlines()) if "teacher/asked" in r
              and "reward/train_loss" in r]
    assert [r["teacher/asked"] for r in rounds] == [20.0, 40.0]  # two feedback rounds, each waited for its answers
    rows = store.execute("SELECT annotator, swapped, shown_at, answered_at FROM labels")
    assert {r[0] for r in rows} == {"annotator"} and all(r[2] <= r[3] for r in rows)
    assert (tmp_path / "videos").is_dir() and list((tmp_path / "videos").glob("*.mp4"))  # rendered ahead

    rng = np.random.default_rng(123)
    env = trainer.engine.pref_env
    ctx = BuildContext(config.env, env.observation_space.shape[0], env.action_space.shape[0], 100, config.seed)
    untrained = LEARNERS.get("bt").factory(config.learner, ctx)  # the same seed: the weights the run's learner started from
    trained, before = _accuracy(trainer.learner, trainer.loop.log, rng), _accuracy(untrained, trainer.loop.log, rng)
    assert trained > 0.6 and trained > before + 0.15, (trained, before)  # measured: 0.69 vs 0.37 (40 labels)


def test_run_killed_while_waiting_resumes_with_its_queue_and_labels(tmp_path, monkeypatch):
    run = tmp_path / "run"
    overrides = [*TINY, f"run_dir={run}", *HUMAN]
    cmd = [sys.executable, "-m", "pbrl.experiments.cli", "train"] + [a for o in overrides for a in ("--set", o)]
    process = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                               start_new_session=True)
    try:
        link = next(re.search(r"http://\S+", line)[0] for line in process.stdout if "?token=" in line)
        url, token = link.split("/?token=")
        first = ScriptedAnnotator(url, token, run / "preferences.sqlite", limit=8)  # round 0, and 3 of round 1
        first.start()
        first.join(180)
        assert first.answered == 8, first.error
        time.sleep(0.3)  # the run now waits for the last two answers of round 1
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    before = PreferenceStore(run / "preferences.sqlite")
    labels_before = before.execute("SELECT * FROM labels ORDER BY id")
    assert len(labels_before) == 8 and before.counts().asked == 10

    built = []  # the resumed run's teacher, to find the address of its page
    init = HumanTeacher.__init__
    monkeypatch.setattr(HumanTeacher, "__init__", lambda self, *a, **k: built.append(self) or init(self, *a, **k))
    second = ScriptedAnnotator(lambda: built[0].server.url if built and built[0].server else None, token,
                               run / "preferences.sqlite")
    second.start()
    try:
        trainer = Runner(load_run_config(run), run, resume=True)  # waits for the two answers the kill interrupted
        trainer.train()
    finally:
        second.stop.set()
        second.join(10)
        built[0].close()
    after = PreferenceStore(run / "preferences.sqlite")
    assert after.execute("SELECT * FROM labels ORDER BY id")[:8] == labels_before  # every label kept
    counts = after.counts()
    assert counts.asked == 10 and counts.pending == 0  # the same queue, finished: no round asked again
    assert second.error is None and second.answered == 2
    assert [r[0] for r in after.execute("SELECT DISTINCT round FROM queries ORDER BY round")] == [0, 1]
