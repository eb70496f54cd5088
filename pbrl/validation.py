"""The value rules every config section shares, checked once for a whole run config at its boundary.

Each config dataclass checks what is particular to it in its ``__post_init__`` (e.g. the teacher's
B-Pref knobs, the feedback schedule). What recurs across sections is here, keyed by the field's
name, so a new learner or agent gets it without a line: no number is NaN or −∞ (+∞ is "no
limit" for knobs such as ``teacher.beta``, ``teacher.round_timeout``), learning rates are finite and > 0, Polyak rates in (0, 1], discounts
in [0, 1], hidden widths ≥ 1, devices are ones torch knows. An error names the full dotted key, the
value and what is allowed, on one line.
"""

from __future__ import annotations

import math
import re
from dataclasses import fields, is_dataclass
from typing import Any


def _in(low: float, high: float, low_open: bool = False, high_open: bool = False) -> tuple[Any, str]:
    def ok(v: float) -> bool:
        return (v > low if low_open else v >= low) and (v < high if high_open else v <= high)
    return ok, f"in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"


_POSITIVE = (lambda v: 0 < v < math.inf, "finite and > 0")
_AT_LEAST_1 = (lambda v: v >= 1, "≥ 1")
_NON_NEGATIVE = (lambda v: 0 <= v < math.inf, "finite and ≥ 0")

RULES: list[tuple[str, tuple[Any, str]]] = [
    (r"lr|learning_rate|.*_lr", _POSITIVE),
    (r"tau|polyak|flip_tau", _in(0, 1, low_open=True)),
    (r"gamma|discount|gae_lambda", _in(0, 1)),
    (r"expectile", _in(0, 1, low_open=True, high_open=True)),
    (r"stop_accuracy", _in(0, 1, low_open=True)),
    (r"dropout", _in(0, 1, high_open=True)),
    (r".*_fraction|.*holdout", _in(0, 1)),
    (r"state_entropy_k|ensemble_size|max_epochs|epochs|n_epochs|gradient_steps", _AT_LEAST_1),
    (r"clip_range|init_temperature", _POSITIVE),
    (r"weight_decay|ent_coef|action_noise|alpha|bc_coeff", _NON_NEGATIVE),
]
"""(field-name pattern, (test, what is allowed)) — the first matching pattern applies; ``hidden_sizes``-like
tuples are checked element-wise by :data:`_WIDTHS`."""

_WIDTHS = re.compile(r"hidden_sizes|.*_hidden")
_DEVICE = re.compile(r"cpu|cuda(:\d+)?|mps|auto")
DEVICES = "cpu, cuda, cuda:N, mps, auto"


def check_section(section: Any, prefix: str) -> None:
    """Refuse a value of ``section`` (a config dataclass, nested ones included) that breaks a shared rule;
    ``prefix`` is its dotted place in the run config (``"agent."``). Raises ``ValueError`` (one line)."""
    for f in fields(section):
        value, key = getattr(section, f.name), f"{prefix}{f.name}"
        if is_dataclass(value):
            check_section(value, f"{key}.")
        elif isinstance(value, float):
            _check_number(key, value, f.name)
        elif isinstance(value, int) and not isinstance(value, bool):
            _check_number(key, value, f.name)
        elif isinstance(value, (tuple, list)) and _WIDTHS.fullmatch(f.name):
            if not value or not all(isinstance(w, int) and w >= 1 for w in value):
                raise ValueError(f"{key}={list(value)} must list hidden widths ≥ 1, e.g. [256, 256]")
        elif f.name == "device" and isinstance(value, str) and not _DEVICE.fullmatch(value):
            raise ValueError(f"{key}={value!r} is not a device; choose one of {DEVICES}")


def _check_number(key: str, value: float, name: str) -> None:
    if isinstance(value, float) and math.isnan(value):
        raise ValueError(f"{key}=nan is not a number; give a finite value")
    for pattern, (ok, allowed) in RULES:
        if re.fullmatch(pattern, name):
            if not ok(value):
                raise ValueError(f"{key}={value} is out of range: it must be {allowed}")
            return
    if value == -math.inf:  # +inf means "no limit" for some knobs (teacher.beta, teacher.round_timeout)
        raise ValueError(f"{key}=-inf must be a finite number")
