"""The labeling page in headless Chromium (Debian's chromium, driven by Playwright): two clips
whose frames differ, a keyboard answer that moves the counter and lands in the store, an
answer kept through a network drop and a reload, and the round finished after the reload."""

from __future__ import annotations

import shutil
from contextlib import contextmanager

import pytest

sync_api = pytest.importorskip("playwright.sync_api", reason="the browser test needs playwright (pip install -e '.[dev]')")
pytest.importorskip("fastapi")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
if CHROMIUM is None:
    pytest.skip("Debian's chromium is not installed (`make system-deps` installs it when run as root); "
                "the labeling page's browser test needs it", allow_module_level=True)

from pbrl.labeling.render import RenderSettings  # noqa: E402
from pbrl.labeling.server import LabelServer  # noqa: E402
from tests.labeling_helpers import queued_store  # noqa: E402

ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]
TASK = "Which <b>cheetah</b> runs faster? <img src=x onerror=alert(1)>"
READY = """(previous) => current !== null && current.id !== previous
  && [...document.querySelectorAll('video')].every((v) => v.readyState >= 2 && !v.paused)
  && document.querySelectorAll('#choices button:disabled').length === 0"""
FRAMES = """() => {
  const canvas = document.createElement('canvas'); canvas.width = 64; canvas.height = 64;
  const context = canvas.getContext('2d');
  const pixels = [...document.querySelectorAll('video')].map((video) => {
    context.drawImage(video, 0, 0, 64, 64);
    return context.getImageData(0, 0, 64, 64).data;
  });
  let difference = 0, brightness = 0;
  for (let i = 0; i < pixels[0].length; i++) {
    difference += Math.abs(pixels[0][i] - pixels[1][i]);
    brightness += pixels[0][i];
  }
  return [difference / pixels[0].length, brightness / pixels[0].length];
}"""


@contextmanager
def _page_of(server, annotator: str, timeout_ms: int):
    """The labeling page of ``server`` for a new ``annotator``, once its first pair plays; closes browser and server."""
    url = server.start()
    token = server.queue.add_annotator(annotator)
    with sync_api.sync_playwright() as playwright:
        try:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        except sync_api.Error as error:
            server.stop()
            pytest.skip(f"chromium is installed but does not start here: {error}")
        try:
            page = browser.new_page(viewport={"width": 1000, "height": 800})
            page.goto(f"{url}/?token={token}")
            page.wait_for_function(READY, arg=None, timeout=timeout_ms)
            yield page
        finally:
            browser.close()
            server.stop()


def _labels(store) -> list[tuple]:
    return store.execute("SELECT query_id, annotator, label, swapped FROM labels ORDER BY id")


def _stored_label(store, query_id: int, shown_left: int, choice: float) -> float:
    left = store.execute(f"SELECT left_id FROM queries WHERE id = {query_id}")[0][0]
    return choice if shown_left == left else 1.0 - choice


def test_labeling_page_in_headless_chromium(tmp_path):
    store, queries = queued_store(tmp_path / "p.sqlite", pairs=3, length=10)
    store.set_meta("label_budget", "3")
    server = LabelServer(store, tmp_path / "videos", TASK, RenderSettings(64, 64), port=0)
    with _page_of(server, "alice", 60_000) as page:
        assert page.inner_text("#task") == TASK and page.locator("#task *").count() == 0  # shown as text
        difference, brightness = page.evaluate(FRAMES)
        assert brightness > 20 and difference > 2, (difference, brightness)  # two real, different clips

        first = page.evaluate("() => current")
        page.keyboard.press("ArrowLeft")
        page.wait_for_function("() => document.getElementById('session').textContent === '1'")
        assert page.inner_text("#round-done") == "1" and page.inner_text("#budget-done") == "1"
        assert _labels(store)[0][:3] == (first["id"], "alice", _stored_label(store, first["id"],
                                                                               first["left"]["segment"], 1.0))
        page.wait_for_function(READY, arg=first["id"], timeout=60_000)

        second = page.evaluate("() => current")  # the network drops while answering the second pair
        page.route("**/api/label", lambda route: route.abort())
        page.keyboard.press("ArrowRight")
        page.wait_for_function("() => document.getElementById('status').textContent.startsWith('Offline')")
        assert len(_labels(store)) == 1 and second["id"] != first["id"]
        page.unroute("**/api/label")
        page.reload()  # mid-round: the kept answer is sent once, then the round goes on
        page.wait_for_function("() => document.getElementById('session').textContent === '2'")
        page.wait_for_function(READY, arg=second["id"], timeout=60_000)
        assert _labels(store)[1][:3] == (second["id"], "alice", _stored_label(store, second["id"],
                                                                                second["left"]["segment"], 0.0))
        third = page.evaluate("() => current")
        page.click("button[data-choice=equal]")
        page.wait_for_selector("#waiting", state="visible")
        counters = [page.inner_text(f"#{name}") for name in ("session", "round-done", "round-quota", "budget-done")]
        assert counters == ["3", "3", "3", "3"]
        assert [row[:3] for row in _labels(store)][2] == (third["id"], "alice", 0.5)
        assert sorted(row[0] for row in _labels(store)) == sorted(int(q) for q in queries)  # each pair once


def test_offline_dataset_pair_answered_through_the_page(tmp_path):
    """A pair of a collected MetaWorld dataset (pbrl.labeling.offline), rendered from its simulator states,
    answered with the keyboard; the label lands in the labels folder's store against the dataset's pair."""
    from pbrl.experiments.collect import CollectConfig, collect
    from pbrl.labeling.offline import OfflineLabelingConfig, open_labels

    dataset = collect(CollectConfig(
        env="metaworld:drawer-open-v3", expert="scripted", weights=(0.0, 1.0), episodes_per_policy=1,
        max_episode_steps=20, segment_length=10, segments=6, pairs=3, out=str(tmp_path / "d.h5")), log=lambda _: None)
    store, data, queries = open_labels(dataset, tmp_path / "labels", OfflineLabelingConfig(
        pairs=2, annotators_per_pair=1, known_rate=0.0))
    server = LabelServer(store, tmp_path / "labels" / "videos", "Which arm opens the drawer?", RenderSettings(64, 64),
                         port=0)
    with _page_of(server, "alice", 120_000) as page:
        difference, brightness = page.evaluate(FRAMES)
        assert brightness > 20 and difference > 1, (difference, brightness)  # the arm, in two different clips
        first = page.evaluate("() => current")
        page.keyboard.press("ArrowLeft")
        page.wait_for_function("() => document.getElementById('session').textContent === '1'")
        assert first["id"] in queries.tolist()
        assert _labels(store)[0][:3] == (first["id"], "alice", _stored_label(store, first["id"],
                                                                               first["left"]["segment"], 1.0))
        episode, start = store.execute(f"SELECT episode, start FROM segments WHERE id = {first['left']['segment']}")[0]
        assert (episode, start) in set(zip(data.segment_episode.tolist(), data.segment_start.tolist()))
