"""People's answers on a dataset's pairs, written back as an offline preference dataset.

A labels folder (``pbrl label-server --dataset DATA.h5 --out LABELS_DIR``,
:mod:`pbrl.labeling.offline`) holds every answer in its store. :func:`human_dataset` turns
them into a dataset in the documented HDF5 layout (:mod:`pbrl.datasets.offline`) — the same
episodes and segments, ``/pairs`` replaced by the pairs people answered and ``/pairs/label``
by one aggregated label per pair (:mod:`pbrl.labeling.aggregation`: Dawid–Skene by default,
or majority) — so ``pbrl train --method cpl|ipl|piql --set reward_free.dataset=OUT.h5``
trains on it unchanged and the Minari export carries it. Known-answer pairs stay in, with
the people's aggregated label (never the true one). ``metadata["teacher"]`` says
``type: human`` with the aggregation, each annotator's weight, known-answer accuracy and
answers, and who was dropped; ``metadata["labeling"]`` the source file, its SHA-256 and the
teacher of the source's own labels; :func:`answer_table` gives every individual answer.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from pbrl.datasets.offline import OfflinePreferenceData
from pbrl.labeling.aggregation import DEFAULT_METHOD, METHODS, Answers, dawid_skene, majority
from pbrl.labeling.exchange import label_records
from pbrl.labeling.offline import dataset_digest, recorded, store_segment_ids
from pbrl.labeling.quality import known_answers, quality
from pbrl.store import PreferenceStore


def answer_table(store: PreferenceStore, data: OfflinePreferenceData) -> tuple[Answers, np.ndarray, np.ndarray]:
    """Every answer in a labels folder's store as :class:`Answers` over the planned pairs, with those pairs'
    dataset segment ids ``(left, right)`` and their query ids (``Answers.pair`` indexes these)."""
    state = recorded(store)
    if state is None:
        raise ValueError(f"{store.path} holds no dataset's pairs; make a labels folder with "
                         "pbrl label-server --dataset DATA.h5 --out LABELS_DIR")
    left, right = (np.array(state["plan"][side], np.int64) for side in ("left", "right"))
    pairs = {(int(a), int(b)): i for i, (a, b) in
             enumerate(zip(store_segment_ids(store, data, left), store_segment_ids(store, data, right)))}
    records = [r for r in label_records(store) if not r["skipped"] and (r["left"], r["right"]) in pairs]
    names = tuple(sorted({r["annotator"] for r in records}))
    answers = Answers(
        np.array([pairs[r["left"], r["right"]] for r in records], np.int64),
        np.array([names.index(r["annotator"]) for r in records], np.int64),
        np.array([r["label"] for r in records], np.float64), len(left), names,
    )
    query_ids = np.full(len(left), -1, np.int64)
    for r in records:
        query_ids[pairs[r["left"], r["right"]]] = r["query_id"]
    return answers, np.stack([left, right]), query_ids


def human_dataset(data: OfflinePreferenceData, store: PreferenceStore, method: str = DEFAULT_METHOD,
                  drop: tuple[str, ...] | list[str] = (), drop_flagged: bool = False,
                  min_accuracy: float = 0.75, min_known: int = 5) -> OfflinePreferenceData:
    """``data`` with its pairs replaced by those people answered, labeled by ``method`` (``dawid-skene`` or
    ``majority``) over the answers of every annotator except ``drop`` (and, with ``drop_flagged``, those
    :func:`~pbrl.labeling.quality.quality` flags)."""
    if method not in METHODS:
        raise ValueError(f"aggregation (--aggregate) {method!r} is unknown; choose one of {list(METHODS)}")
    answers, (left, right), query_ids = answer_table(store, data)
    report = quality(store, min_accuracy, min_known)
    unknown = sorted(set(drop) - set(answers.names))
    if unknown:
        raise ValueError(f"--drop {unknown[0]}: no answers from that annotator (annotators: {', '.join(answers.names)})")
    dropped = sorted(set(drop) | (set(report.flagged) if drop_flagged else set()))
    kept = answers.without(dropped)
    truth = known_answers(store)
    known = {i: truth[int(q)] for i, q in enumerate(query_ids) if int(q) in truth}
    annotators: dict[str, Any] = {}
    if method == "dawid-skene":
        model = dawid_skene(kept, known)
        labels = model.labels
        for j, name in enumerate(kept.names):
            if name not in dropped:
                annotators[name] = {"weight": float(model.weights[j]), "p_better": float(model.p[j]),
                                    "p_equal": float(model.e[j]), "p_worse": float(model.r[j])}
    else:
        labels = majority(kept)
    for name in answers.names:
        stats = report.annotators.get(name)
        annotators.setdefault(name, {}).update(
            answers=int(np.sum(np.asarray(answers.names)[answers.annotator] == name)), dropped=name in dropped,
            known_accuracy=None if stats is None or not stats.known else stats.known_accuracy,
        )
    answered = ~np.isnan(labels)
    if not answered.any():
        raise ValueError(f"{store.path} holds no answers to aggregate (after dropping {dropped or 'nobody'})")
    state = recorded(store)
    metadata = dict(data.metadata)
    metadata["teacher"] = {"type": "human", "name": f"human:{method}", "aggregation": method, "annotators": annotators,
                           "dropped": dropped, "answers": int(len(kept.value))}
    metadata["labeling"] = {"source": state["dataset"], "sha256": state["sha256"], "settings": state["settings"],
                            "known_answer_pairs": int(sum(int(q) in truth for q in query_ids[answered])),
                            "source_teacher": data.metadata.get("teacher")}
    return replace(data, left=left[answered], right=right[answered], labels=labels[answered].astype(np.float32),
                   metadata=metadata)


def write_human_dataset(labels_dir: str | Path, out: str | Path, **options: Any) -> tuple[Path, OfflinePreferenceData]:
    """Write the dataset of a labels folder's answers to ``out`` (HDF5); ``options`` as :func:`human_dataset`."""
    store = PreferenceStore(Path(labels_dir) / "preferences.sqlite")
    try:
        state = recorded(store)
        if state is None:
            raise ValueError(f"{labels_dir} is not a labels folder of pbrl label-server --dataset (no record of a dataset)")
        if not Path(state["dataset"]).exists() or dataset_digest(state["dataset"]) != state["sha256"]:
            raise ValueError(f"{state['dataset']} is missing or changed since {labels_dir} was set up (SHA-256 "
                             f"{state['sha256'][:12]}…); put the original file back")
        data = human_dataset(OfflinePreferenceData.load(state["dataset"]), store, **options)
    finally:
        store.close()
    return data.save(out), data
