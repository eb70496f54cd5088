"""Invalid inputs, table-driven: HTTP requests to the label server, offline HDF5 datasets and
``pbrl label-server`` / ``pbrl labels`` / ``pbrl plot`` arguments. Each one is refused with a
one-line error that names the field at fault, and none is accepted (nothing is written)."""

from __future__ import annotations

import time
import warnings
from pathlib import Path

import numpy as np
import pytest

from pbrl.datasets.offline import DatasetError, Episodes, OfflinePreferenceData
from tests.labeling_helpers import stateless_store

# ------------------------------------------------------------------ HTTP


def _body(**fields) -> dict:
    return {"json": {"pair": "PAIR", "choice": "left", "request_id": "request-0001", **fields}}


def _without(name: str) -> dict:
    body = _body()["json"]
    del body[name]
    return {"json": body}


JSON = {"Content-Type": "application/json"}
# (case, who sends it, method, path, request arguments, status, what the one-line detail must name);
# "PAIR" is replaced by the sender's open pair, "BOBS" by the pair bob has answered
HTTP_CASES = [
    ("pair missing", "alice", "post", "/api/label", _without("pair"), 422, "pair"),
    ("pair a string", "alice", "post", "/api/label", _body(pair="1"), 422, "pair"),
    ("pair a bool", "alice", "post", "/api/label", _body(pair=True), 422, "pair"),
    ("pair a float", "alice", "post", "/api/label", _body(pair=1.5), 422, "pair"),
    ("pair null", "alice", "post", "/api/label", _body(pair=None), 422, "pair"),
    ("pair zero", "alice", "post", "/api/label", _body(pair=0), 422, "pair"),
    ("pair negative", "alice", "post", "/api/label", _body(pair=-3), 422, "pair"),
    ("pair 2**70", "alice", "post", "/api/label", _body(pair=2**70), 422, "pair"),
    ("pair NaN", "alice", "post", "/api/label",
     {"content": b'{"pair": NaN, "choice": "left", "request_id": "request-0001"}', "headers": JSON}, 422, "pair"),
    ("pair a list", "alice", "post", "/api/label", _body(pair=[1]), 422, "pair"),
    ("choice missing", "alice", "post", "/api/label", _without("choice"), 422, "choice"),
    ("choice unknown", "alice", "post", "/api/label", _body(choice="maybe"), 422, "choice"),
    ("choice upper case", "alice", "post", "/api/label", _body(choice="LEFT"), 422, "choice"),
    ("choice a number", "alice", "post", "/api/label", _body(choice=1), 422, "choice"),
    ("request id missing", "alice", "post", "/api/label", _without("request_id"), 422, "request_id"),
    ("request id too short", "alice", "post", "/api/label", _body(request_id="abc"), 422, "request_id"),
    ("request id too long", "alice", "post", "/api/label", _body(request_id="r" * 65), 422, "request_id"),
    ("request id a path", "alice", "post", "/api/label", _body(request_id="../../etc/passwd"), 422, "request_id"),
    ("request id a number", "alice", "post", "/api/label", _body(request_id=12345678), 422, "request_id"),
    ("note too long", "alice", "post", "/api/label", _body(note="x" * 1001), 422, "note"),
    ("note a number", "alice", "post", "/api/label", _body(note=3), 422, "note"),
    ("unknown field", "alice", "post", "/api/label", _body(label=1.0), 422, "label"),
    ("body a list", "alice", "post", "/api/label", {"json": ["PAIR", "left"]}, 400, "JSON object"),
    ("body a string", "alice", "post", "/api/label", {"json": "left"}, 400, "JSON object"),
    ("body empty", "alice", "post", "/api/label", {"content": b"", "headers": JSON}, 400, "JSON object"),
    ("body malformed", "alice", "post", "/api/label", {"content": b'{"pair": 1,', "headers": JSON}, 400,
     "JSON object"),
    ("body not UTF-8", "alice", "post", "/api/label", {"content": b"\xff\xfe{}", "headers": JSON}, 400,
     "JSON object"),
    ("body nested 10 000 deep", "alice", "post", "/api/label", {"content": b"[" * 10_000, "headers": JSON}, 400,
     "JSON object"),
    ("body as text/plain", "alice", "post", "/api/label",
     {"content": b'{"pair": 1}', "headers": {"Content-Type": "text/plain"}}, 415, "Content-Type"),
    ("body as a form", "alice", "post", "/api/label", {"data": {"pair": "1"}}, 415, "Content-Type"),
    ("body untyped", "alice", "post", "/api/label", {"content": b'{"pair": 1}'}, 415, "Content-Type"),
    ("body over the limit", "alice", "post", "/api/label", _body(note="x" * 20_000), 413, "body"),
    ("bad Content-Length", "alice", "post", "/api/label",
     {"content": b"{}", "headers": {**JSON, "Content-Length": "12abc"}}, 413, "Content-Length"),
    ("foreign Host", "alice", "get", "/api/next", {"headers": {"Host": "evil.example:8765"}}, 400, "host"),
    ("foreign Host on the page", "alice", "get", "/", {"headers": {"Host": "rebound.attacker.test"}}, 400, "host"),
    ("foreign IP as Host", "alice", "get", "/api/next", {"headers": {"Host": "10.1.2.3:8765"}}, 400, "host"),
    ("no token", "anonymous", "get", "/api/next", {}, 401, "token"),
    ("wrong token", "anonymous", "get", "/api/next", {"headers": {"Authorization": "Bearer nope"}}, 401, "token"),
    ("token too long", "anonymous", "get", "/api/next?token=" + "t" * 200, {}, 422, "token"),
    ("revoked link", "carol", "get", "/api/next", {}, 401, "revoked"),
    ("expired link", "dave", "get", "/api/next", {}, 401, "expired"),
    ("revoked link posting", "carol", "post", "/api/label", _body(pair=1), 401, "revoked"),
    ("unknown pair", "alice", "post", "/api/label", _body(pair=10_000), 404, "pair"),
    ("pair of someone else", "alice", "post", "/api/label", _body(pair="BOBS"), 403, "pair"),
    ("second answer", "bob", "post", "/api/label", _body(pair="BOBS", request_id="request-0002"), 409, "pair"),
    ("same request id, other choice", "bob", "post", "/api/label",
     _body(pair="BOBS", choice="right", request_id="bob-request-1"), 409, "request"),
    ("video 2**63", "alice", "get", f"/video/{2**63}.mp4", {}, 404, "video"),
    ("video 2**64", "alice", "get", f"/video/{2**64}.mp4", {}, 404, "video"),
    ("video of another pair", "alice", "get", "/video/BOBS_SEGMENT.mp4", {}, 404, "video"),
]


@pytest.fixture(scope="module")
def label_api(tmp_path_factory):
    """A server with: alice holding an open pair, bob's pair answered, carol revoked, dave expired."""
    pytest.importorskip("fastapi")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient
    from pbrl.labeling.render import RenderSettings
    from pbrl.labeling.server import LabelServer

    root = tmp_path_factory.mktemp("hardening")
    store, _ = stateless_store(root / "p.sqlite", pairs=4)
    server = LabelServer(store, root / "videos", "task", RenderSettings(32, 32), port=0)
    client = lambda token=None: TestClient(  # noqa: E731
        server.app, base_url="http://127.0.0.1:8765", headers={"Authorization": f"Bearer {token}"} if token else {})
    clients = {name: client(server.queue.add_annotator(name)) for name in ("alice", "bob", "carol")}
    clients["dave"] = client(server.queue.add_annotator("dave", expires_at=time.time() + 0.2))
    clients["anonymous"] = client()
    server.queue.revoke("carol")
    bobs = clients["bob"].get("/api/next").json()["pair"]
    answer = {"pair": bobs["id"], "choice": "left", "request_id": "bob-request-1"}
    assert clients["bob"].post("/api/label", json=answer).status_code == 200
    alices = clients["alice"].get("/api/next").json()["pair"]["id"]
    time.sleep(0.3)  # dave's link expires
    return store, clients, {"PAIR": alices, "BOBS": bobs["id"], "BOBS_SEGMENT": bobs["left"]["segment"]}


def _snapshot(store) -> tuple:
    tables = ("labels", "assignments", "label_queue", "annotators")
    return tuple(store.execute(f"SELECT * FROM {table} ORDER BY 1") for table in tables)


def _fill(value, names: dict):
    if isinstance(value, str):
        return names.get(value, value)
    if isinstance(value, dict):
        return {key: _fill(item, names) for key, item in value.items()}
    if isinstance(value, list):
        return [_fill(item, names) for item in value]
    return value


@pytest.mark.parametrize("case, who, method, path, arguments, status, field", HTTP_CASES, ids=[c[0] for c in HTTP_CASES])
def test_http_input_is_refused_with_a_one_line_error(label_api, case, who, method, path, arguments, status, field):
    store, clients, names = label_api
    before = _snapshot(store)
    path = path.replace("BOBS_SEGMENT", str(names["BOBS_SEGMENT"]))
    arguments = {key: (_fill(value, names) if key == "json" else value) for key, value in arguments.items()}
    response = getattr(clients[who], method)(path, **arguments)
    detail = response.json()["detail"]
    assert response.status_code == status, (case, response.status_code, detail)
    assert isinstance(detail, str) and "\n" not in detail and field.lower() in detail.lower(), (case, detail)
    assert _snapshot(store) == before, case


# ------------------------------------------------------------------ HDF5 datasets


def _dataset(path: Path) -> Path:
    """A small valid dataset file: 3 episodes, 12 segments of 5 steps, 20 labeled pairs (one skipped)."""
    rng = np.random.default_rng(0)
    lengths = np.array([20, 15, 25])
    steps = int(lengths.sum())
    floats = lambda *shape: rng.normal(size=shape).astype(np.float32)  # noqa: E731
    episodes = Episodes(
        obs=floats(steps, 4), actions=floats(steps, 2), next_obs=floats(steps, 4), rewards=floats(steps),
        successes=np.zeros(steps, np.float32), terminated=np.zeros(steps, bool), truncated=np.zeros(steps, bool),
        start=np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64), length=lengths.astype(np.int64),
        policy=np.array([0, 1, 1]), sim_states=rng.normal(size=(steps, 3)),
    )
    labels = rng.choice([0.0, 0.5, 1.0], size=20).astype(np.float32)
    labels[3] = np.nan
    data = OfflinePreferenceData("gym:HalfCheetah-v5", episodes, np.repeat(np.arange(3), 4), np.tile([0, 3, 6, 10], 3),
                                 5, rng.integers(0, 12, 20), rng.integers(0, 12, 20), labels,
                                 {"policies": [{"name": "a"}, {"name": "b"}]})
    return data.save(path)


def _replace(key: str, value) -> callable:
    def edit(f) -> None:
        del f[key]
        f[key] = value
    return edit


def _set(key: str, row, value) -> callable:
    def edit(f) -> None:
        f[key][row] = value
    return edit


def _delete(key: str) -> callable:
    def edit(f) -> None:
        del f[key]
    return edit


def _attr(name: str, value) -> callable:
    def edit(f) -> None:
        if value is None:
            del f.attrs[name]
        else:
            f.attrs[name] = value
    return edit


# (case, edit of a valid file, what the one-line error must name)
HDF5_CASES = [
    ("label 3.0", _set("pairs/label", 0, 3.0), "/pairs/label"),
    ("label -1", _set("pairs/label", 1, -1.0), "/pairs/label"),
    ("label 0.3", _set("pairs/label", 2, 0.3), "/pairs/label"),
    ("label infinite", _set("pairs/label", 0, np.inf), "/pairs/label"),
    ("labels as integers", _replace("pairs/label", np.ones(20, np.int64)), "/pairs/label"),
    ("labels too few", _replace("pairs/label", np.ones(19, np.float32)), "/pairs/label"),
    ("labels as text", _replace("pairs/label", np.array([b"left"] * 20)), "/pairs/label"),
    ("NaN observation", _set("episodes/obs", (5, 1), np.nan), "/episodes/obs"),
    ("infinite observation", _set("episodes/obs", (0, 0), np.inf), "/episodes/obs"),
    ("NaN next observation", _set("episodes/next_obs", (7, 2), np.nan), "/episodes/next_obs"),
    ("NaN action", _set("episodes/actions", (3, 0), np.nan), "/episodes/actions"),
    ("NaN reward", _set("episodes/rewards", 4, np.nan), "/episodes/rewards"),
    ("NaN success", _set("episodes/successes", 4, np.nan), "/episodes/successes"),
    ("NaN simulator state", _set("episodes/sim_states", (1, 1), np.nan), "/episodes/sim_states"),
    ("observations 1-D", _replace("episodes/obs", np.zeros(60, np.float32)), "/episodes/obs"),
    ("observations as integers", _replace("episodes/obs", np.zeros((60, 4), np.int64)), "/episodes/obs"),
    ("next observations of another width", _replace("episodes/next_obs", np.zeros((60, 5), np.float32)),
     "/episodes/next_obs"),
    ("actions one row short", _replace("episodes/actions", np.zeros((59, 2), np.float32)), "/episodes/actions"),
    ("terminated as floats", _replace("episodes/terminated", np.zeros(60, np.float32)), "/episodes/terminated"),
    ("truncated one row short", _replace("episodes/truncated", np.zeros(59, bool)), "/episodes/truncated"),
    ("actions missing", _delete("episodes/actions"), "/episodes/actions"),
    ("labels missing", _delete("pairs/label"), "/pairs/label"),
    ("segment starts missing", _delete("segments/start"), "/segments/start"),
    ("episodes not a group", lambda f: (_delete("episodes")(f), f.create_dataset("episodes", data=[1])), "/episodes"),
    ("unknown episode array", lambda f: f.create_dataset("episodes/extra", data=np.zeros(60)), "/episodes/extra"),
    ("episode lengths not summing up", _set("episodes/length", 0, 21), "/episodes/length"),
    ("episodes overlapping", _set("episodes/start", 1, 10), "/episodes/start"),
    ("empty episode", _replace("episodes/length", np.array([20, 0, 40])), "/episodes/length"),
    ("negative policy index", _set("episodes/policy", 0, -1), "/episodes/policy"),
    ("policy index past metadata", _set("episodes/policy", 2, 5), "/episodes/policy"),
    ("segment of no episode", _set("segments/episode", 0, 3), "/segments/episode"),
    ("negative segment start", _set("segments/start", 0, -1), "/segments/start"),
    ("segment past its episode", _set("segments/start", 4, 12), "/segments/start"),
    ("segment starts of another length", _replace("segments/start", np.zeros(11, np.int64)), "/segments/start"),
    ("pair of no segment", _set("pairs/left", 0, 12), "/pairs/left"),
    ("pair of a negative segment", _set("pairs/right", 0, -1), "/pairs/right"),
    ("pair ids as floats", _replace("pairs/left", np.zeros(20, np.float32)), "/pairs/left"),
    ("segment length 0", _attr("segment_length", 0), "segment_length"),
    ("segment length missing", _attr("segment_length", None), "segment_length"),
    ("segment length a string", _attr("segment_length", "5"), "segment_length"),
    ("format version a string", _attr("format_version", "one"), "format_version"),
    ("format version 2", _attr("format_version", 2), "format version"),
    ("format of another kind", _attr("format", "minari"), "format"),
    ("metadata not JSON", _attr("metadata", "{policies"), "metadata"),
    ("metadata a list", _attr("metadata", "[1, 2]"), "metadata"),
    ("env id missing", _attr("env_id", None), "env_id"),
]


@pytest.mark.parametrize("case, edit, key", HDF5_CASES, ids=[c[0] for c in HDF5_CASES])
def test_dataset_defect_is_refused_with_a_one_line_error(tmp_path, case, edit, key):
    import h5py

    path = _dataset(tmp_path / "data.h5")
    with h5py.File(path, "a") as f:
        edit(f)
    with pytest.raises(DatasetError) as error:
        OfflinePreferenceData.load(path)
    message = str(error.value)
    assert "\n" not in message and str(path) in message and key in message, (case, message)


@pytest.mark.parametrize("damage", ["text", "truncated", "empty"])
def test_a_file_that_is_not_hdf5_is_refused_with_a_one_line_error(tmp_path, damage):
    path = _dataset(tmp_path / "data.h5")
    content = path.read_bytes()
    path.write_bytes({"text": b"episodes,obs\n1,2\n", "truncated": content[: len(content) // 2], "empty": b""}[damage])
    with pytest.raises(DatasetError) as error:
        OfflinePreferenceData.load(path)
    assert "\n" not in str(error.value) and str(path) in str(error.value)


def test_the_valid_dataset_loads_with_its_skip(tmp_path):
    data = OfflinePreferenceData.load(_dataset(tmp_path / "data.h5"))  # the cases above are refusals, not a bad fixture
    assert np.isnan(data.labels[3]) and len(data.preferences()) == 19


# ------------------------------------------------------------------ command line

CLI_CASES = [
    ("port too large", ["label-server", "RUN", "--port", "70000"], "--port"),
    ("port negative", ["label-server", "RUN", "--port=-1"], "--port"),
    ("port not a number", ["label-server", "RUN", "--port", "eighty"], "--port"),
    ("name with a space", ["label-server", "RUN", "--add", "bad name"], "--add"),
    ("name empty", ["label-server", "RUN", "--add="], "--add"),
    ("name too long", ["label-server", "RUN", "--add", "n" * 65], "--add"),
    ("name like an option", ["label-server", "RUN", "--add=-rf"], "--add"),
    ("name with a slash", ["label-server", "RUN", "--add", "a/b"], "--add"),
    ("name like a formula", ["label-server", "RUN", "--add", "=cmd"], "--add"),
    ("name with markup", ["label-server", "RUN", "--add", "<b>x</b>"], "--add"),
    ("revoke a bad name", ["label-server", "RUN", "--revoke", "a b"], "--revoke"),
    ("revoke an unknown name", ["label-server", "RUN", "--revoke", "nobody"], "nobody"),
    ("revoke while adding", ["label-server", "RUN", "--revoke", "alice", "--add", "bob"], "--revoke"),
    ("expires zero", ["label-server", "RUN", "--add", "eve", "--expires", "0"], "--expires"),
    ("expires unknown unit", ["label-server", "RUN", "--add", "eve", "--expires", "7y"], "--expires"),
    ("expires negative", ["label-server", "RUN", "--add", "eve", "--expires=-1h"], "--expires"),
    ("server on no run", ["label-server", "MISSING"], "config.yaml"),
    ("labels of no run", ["labels", "MISSING"], "preferences.sqlite"),
    ("export to an unknown format", ["labels", "RUN", "--export", "OUT.xlsx"], "--export"),
    ("plot of no run", ["plot", "MISSING"], "MISSING"),
]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    """A directory with a store holding annotator alice (what --revoke and labels need)."""
    from pbrl.labeling.assignments import LabelQueue

    run = tmp_path_factory.mktemp("run")
    store, _ = stateless_store(run / "preferences.sqlite", pairs=2)
    LabelQueue(store).add_annotator("alice")
    return run


@pytest.mark.parametrize("case, argv, field", CLI_CASES, ids=[c[0] for c in CLI_CASES])
def test_cli_input_is_refused_with_a_one_line_error(run_dir, tmp_path, capsys, case, argv, field):
    from pbrl.experiments.cli import main

    from pbrl.store import PreferenceStore

    names = {"RUN": str(run_dir), "MISSING": str(tmp_path / "missing"), "OUT.xlsx": str(tmp_path / "out.xlsx")}
    store = PreferenceStore(run_dir / "preferences.sqlite")
    before = _snapshot(store)
    try:
        code = main([names.get(arg, arg) for arg in argv])
    except SystemExit as exit_:  # argparse's own refusals
        code = exit_.code
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and "Traceback" not in err, (case, code, err)
    assert lines and names.get(field, field) in lines[-1], (case, err)
    assert _snapshot(store) == before, case


# ------------------------------------------------------------------ config values, YAML files and training flags

def _config_case(override: str, field: str, method: str = "pebble") -> tuple:
    return (f"{method} {override}", ["config", "--method", method, "--set", override], field)


CONFIG_CASES = [
    _config_case("learner.lr=nan", "learner.lr"),
    _config_case("learner.lr=inf", "learner.lr"),
    _config_case("learner.lr=-1", "learner.lr"),
    _config_case("learner.lr=0", "learner.lr"),
    _config_case("agent.learning_rate=nan", "agent.learning_rate"),
    _config_case("agent.learning_rate=-3e-4", "agent.learning_rate"),
    _config_case("agent.tau=nan", "agent.tau"),
    _config_case("agent.tau=0", "agent.tau"),
    _config_case("agent.tau=1.5", "agent.tau"),
    _config_case("agent.gamma=1.5", "agent.gamma"),
    _config_case("agent.gamma=-0.1", "agent.gamma"),
    _config_case("agent.gamma=nan", "agent.gamma"),
    _config_case("agent.init_temperature=0", "agent.init_temperature"),
    _config_case("agent.gradient_steps=0", "agent.gradient_steps"),
    _config_case("agent.state_entropy_k=0", "agent.state_entropy_k"),
    _config_case("agent.hidden_sizes=[0]", "agent.hidden_sizes"),
    _config_case("agent.hidden_sizes=[-4,4]", "agent.hidden_sizes"),
    _config_case("agent.hidden_sizes=[]", "agent.hidden_sizes"),
    _config_case("learner.hidden_sizes=[0]", "learner.hidden_sizes"),
    _config_case("agent.device=tpu", "agent.device"),
    _config_case("agent.device=cuda:x", "agent.device"),
    _config_case("learner.device=tpu", "learner.device"),
    _config_case("agent.impl=bogus", "agent.impl"),
    _config_case("agent.batch_size=0", "agent.batch_size"),
    _config_case("agent.recent_fraction=2", "agent.recent_fraction"),
    _config_case("agent.tau=abc", "agent.tau"),
    _config_case("agent.bogus=1", "agent.bogus"),
    ("agent.type=bogus", ["config", "--set", "agent.type=bogus"], "bogus"),
    _config_case("learner.stop_accuracy=nan", "learner.stop_accuracy"),
    _config_case("learner.stop_accuracy=0", "learner.stop_accuracy"),
    _config_case("learner.stop_accuracy=1.5", "learner.stop_accuracy"),
    _config_case("learner.ensemble_size=0", "learner.ensemble_size"),
    _config_case("learner.type=bogus", "bogus"),
    _config_case("query.strategy=bogus", "query.strategy"),
    _config_case("query.pool_multiplier=0", "query.pool_multiplier"),
    _config_case("feedback.budget=-1", "feedback.budget"),
    _config_case("feedback.per_round=0", "feedback.per_round"),
    _config_case("feedback.interval=0", "feedback.interval"),
    _config_case("feedback.segment_length=0", "feedback.segment_length"),
    _config_case("feedback.budget=many", "feedback.budget"),
    _config_case("teacher.beta=nan", "teacher.beta"),
    _config_case("teacher.eps_mistake=1.5", "teacher.eps_mistake"),
    _config_case("teacher.gamma=0", "teacher.gamma"),
    _config_case("teacher.preset=bogus", "bogus"),
    _config_case("teacher.type=bogus", "bogus"),
    _config_case("steps=0", "steps"),
    _config_case("eval_episodes=-1", "eval_episodes"),
    _config_case("torch_threads=0", "torch_threads"),
    _config_case("bogus_key=1", "bogus_key"),
    _config_case("agent.gae_lambda=2", "agent.gae_lambda", "pref-ppo"),
    _config_case("agent.clip_range=0", "agent.clip_range", "pref-ppo"),
    _config_case("agent.n_envs=0", "agent.n_envs", "pref-ppo"),
    _config_case("agent.device=tpu", "agent.device", "pref-ppo"),
    _config_case("learner.alpha=0", "learner.alpha", "cpl"),
    _config_case("learner.lr=nan", "learner.lr", "cpl"),
    _config_case("learner.discount=1.5", "learner.discount", "cpl"),
    _config_case("reward_free.holdout=1", "reward_free.holdout", "cpl"),
    _config_case("learner.polyak=0", "learner.polyak", "ipl"),
    _config_case("learner.expectile=1", "learner.expectile", "ipl"),
    _config_case("agent.tau=0.5", "agent", "cpl"),
]

YAML_CASES = [  # (case, the file's bytes, what the one-line error must name: FILE is the file's path)
    ("not YAML", b"learner: [bt\n", "FILE"),
    ("binary", b"\xff\xfe\x00garbage", "FILE"),
    ("a list", b"- learner\n- agent\n", "mapping"),
    ("a section as a number", b"agent: 3\n", "agent"),
    ("a learning rate NaN", b"learner:\n  type: bt\n  lr: .nan\n", "learner.lr"),
    ("tau infinite", b"agent:\n  tau: .inf\n", "agent.tau"),
    ("a budget as words", b"feedback:\n  budget: many\n", "feedback.budget"),
    ("an unknown top-level key", b"bogus_key: 1\n", "bogus_key"),
    ("a negative beta", b"teacher:\n  type: synthetic\n  beta: -1\n", "teacher.beta"),
    ("a strategy as a number", b"query:\n  strategy: 7\n", "query.strategy"),
    ("a device list", b"agent:\n  device: [cpu]\n", "agent.device"),
    ("hidden sizes a string", b"agent:\n  hidden_sizes: wide\n", "agent.hidden_sizes"),
]

FLAG_CASES = [
    ("--steps 0", ["config", "--steps", "0"], "steps"),
    ("--steps not a number", ["config", "--steps", "many"], "--steps"),
    ("--feedback negative", ["config", "--feedback", "-1"], "feedback.budget"),
    ("--seed not a number", ["config", "--seed", "x"], "--seed"),
    ("--query unknown", ["config", "--query", "bogus"], "query.strategy"),
    ("--method unknown", ["config", "--method", "bogus"], "bogus"),
    ("--teacher unknown", ["config", "--teacher", "bogus"], "bogus"),
    ("--teacher-type unknown", ["config", "--teacher-type", "bogus"], "bogus"),
    ("--set without =", ["config", "--set", "agent.tau"], "--set"),
    ("--config missing", ["config", "--config", "MISSING"], "MISSING"),
    ("unknown env id", ["train", "--env", "gym:Nope-v5", "--run-dir", "NEW"], "gym:Nope-v5"),
    ("resume of no run", ["resume", "MISSING"], "config.yaml"),
    ("resume of a run with a broken config", ["resume", "BROKEN"], "config.yaml"),
    ("resume with --steps 0", ["resume", "BROKEN", "--steps", "0"], "config.yaml"),
    ("export of no run", ["export-run", "MISSING", "NEW"], "config.yaml"),
]


@pytest.mark.parametrize("case, argv, field", CONFIG_CASES + FLAG_CASES, ids=[c[0] for c in CONFIG_CASES + FLAG_CASES])
def test_config_value_or_flag_is_refused_with_a_one_line_error(tmp_path, capsys, case, argv, field):
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.yaml").write_text("learner: [bt\n")
    names = {"MISSING": str(tmp_path / "missing"), "NEW": str(tmp_path / "new"), "BROKEN": str(broken)}
    _refused(capsys, [names.get(arg, arg) for arg in argv], names.get(field, field), case)
    assert not (tmp_path / "new" / "config.yaml").exists(), case


@pytest.mark.parametrize("case, content, field", YAML_CASES, ids=[c[0] for c in YAML_CASES])
def test_yaml_file_is_refused_with_a_one_line_error(tmp_path, capsys, case, content, field):
    path = tmp_path / "config.yaml"
    path.write_bytes(content)
    _refused(capsys, ["config", "--config", str(path)], str(path) if field == "FILE" else field, case)


def _refused(capsys, argv: list[str], field: str, case: str) -> None:
    from pbrl.experiments.cli import main

    try:
        code = main(argv)
    except SystemExit as exit_:  # argparse's own refusals
        code = exit_.code
    captured = capsys.readouterr()
    lines = [line for line in captured.err.splitlines() if line.strip()]
    assert code == 2 and "Traceback" not in captured.err, (case, code, captured.err, captured.out[-300:])
    message = [line for line in lines if not line.startswith(("usage:", " "))]  # argparse's usage lines aside
    assert len(message) == 1 and field in lines[-1], (case, captured.err)
