"""Labels out of a store into plain files, and back in as a preference dataset.

* **JSONL** (self-contained): one ``{"type": "segment", ...}`` line per labeled segment
  with what a learner may see (``obs``, ``actions``, ``next_obs`` as nested lists, and
  ``terminals`` where the segment records them, plus its env id, episode and start step), then one ``{"type": "label", ...}`` line per label
  with every column of the store's label row and the query's round and segment ids.
* **CSV** (for spreadsheets): the label lines only; reading it back needs the store that
  holds the segments. A text cell that a spreadsheet would run as a formula (it starts
  with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return: an annotator's note
  ``=HYPERLINK(…)``) is written with a leading ``'``, so it shows as text.

:func:`read_dataset` turns either into a :class:`~pbrl.segments.PreferenceDataset` (the
type every preference learner's ``update`` takes), skipped answers left out.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import select

from pbrl.database import labels_table, queries_table, segments_table
from pbrl.segments import PreferenceDataset, Segments
from pbrl.store import PreferenceStore

LABEL_FIELDS = ("label_id", "query_id", "round", "left", "right", "label", "skipped", "annotator", "swapped",
                "shown_at", "answered_at", "note")
_ARRAYS = ("obs", "actions", "next_obs")
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(value: Any) -> Any:
    """A CSV cell that no spreadsheet runs as a formula: text starting like one gets a leading ``'``."""
    return "'" + value if isinstance(value, str) and value.startswith(_FORMULA_STARTS) else value


def label_records(store: PreferenceStore) -> list[dict[str, Any]]:
    """Every label in ``store`` (skips included), oldest first, as plain dicts with :data:`LABEL_FIELDS`."""
    c, q = labels_table.c, queries_table.c
    statement = (
        select(c.id, c.query_id, q.round, q.left_id, q.right_id, c.label, c.skipped, c.annotator, c.swapped,
               c.shown_at, c.answered_at, c.note)
        .join_from(labels_table, queries_table, q.id == c.query_id).order_by(c.id)
    )
    return [dict(zip(LABEL_FIELDS, row)) for row in store.read(statement)]


def export_labels(store: PreferenceStore, path: str | Path) -> int:
    """Write every label to ``path`` (``.jsonl`` or ``.csv``); returns how many."""
    path = Path(path)
    records = label_records(store)
    if path.suffix == ".csv":
        with path.open("w", newline="") as file:
            writer = csv.DictWriter(file, fieldnames=LABEL_FIELDS)
            writer.writeheader()
            writer.writerows({key: spreadsheet_safe(value) for key, value in record.items()} for record in records)
    elif path.suffix == ".jsonl":
        ids = sorted({r["left"] for r in records} | {r["right"] for r in records})
        s = segments_table.c
        provenance = {row[0]: row[1:] for row in store.read(
            select(s.id, s.env_id, s.episode, s.start).where(s.id.in_(ids)))}
        with path.open("w") as file:
            for segment_id in ids:
                arrays = store.segments(np.array([segment_id]))
                env_id, episode, start = provenance[segment_id]
                line = {"type": "segment", "id": segment_id, "env_id": env_id, "episode": episode, "start": start}
                line.update({name: getattr(arrays, name)[0].tolist() for name in _ARRAYS})
                if arrays.terminals is not None:
                    line["terminals"] = arrays.terminals[0].tolist()
                file.write(json.dumps(line) + "\n")
            for record in records:
                file.write(json.dumps({"type": "label", **record}) + "\n")
    else:
        raise ValueError(f"export to .jsonl (with segments) or .csv (labels only), not {path.name!r}")
    return len(records)


def read_dataset(path: str | Path, store: PreferenceStore | None = None) -> PreferenceDataset:
    """The answered (non-skipped) labels of an exported file as a learner dataset.

    A ``.csv`` file names segments by id only: pass the ``store`` that holds them.
    """
    path = Path(path)
    if path.suffix == ".csv":
        if store is None:
            raise ValueError(f"{path} holds labels only; pass the preference store that holds its segments")
        with path.open(newline="") as file:
            records = [r for r in csv.DictReader(file) if r["skipped"] == "0"]
        if not records:
            raise ValueError(f"{path} holds no answered labels")
        left, right = (np.array([int(r[side]) for r in records], dtype=np.int64) for side in ("left", "right"))
        labels = np.array([float(r["label"]) for r in records], dtype=np.float32)
        return PreferenceDataset(store.segments(left), store.segments(right), labels)
    segments: dict[int, dict[str, Any]] = {}
    records = []
    with path.open() as file:
        for number, line in enumerate(file, 1):
            item = json.loads(line)
            if item.get("type") == "segment":
                segments[int(item["id"])] = item
            elif item.get("type") == "label":
                records.append(item)
            else:
                raise ValueError(f"{path}:{number} is neither a segment nor a label line")
    records = [r for r in records if not r["skipped"]]
    if not records:
        raise ValueError(f"{path} holds no answered labels")
    missing = {r[side] for r in records for side in ("left", "right")} - set(segments)
    if missing:
        raise ValueError(f"{path} has labels for segments it does not hold: {sorted(missing)[:5]}")

    def stack(side: str) -> Segments:
        items = [segments[r[side]] for r in records]
        terminals = None
        if any("terminals" in item for item in items):  # segments without them never terminate
            terminals = np.array([item.get("terminals", [False] * len(item["obs"])) for item in items], dtype=bool)
        arrays = (np.array([item[name] for item in items], dtype=np.float32) for name in _ARRAYS)
        return Segments(*arrays, terminals=terminals)

    return PreferenceDataset(stack("left"), stack("right"), np.array([r["label"] for r in records], dtype=np.float32))
