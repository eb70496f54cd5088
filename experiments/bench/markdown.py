"""What every speed bench writes: its Markdown table, printed and saved, and the CPU it ran on."""

from __future__ import annotations

import platform
from pathlib import Path


def write_markdown(lines: list[str], out_dir: str | Path, name: str) -> str:
    """Join ``lines``, print them and write ``<out_dir>/<name>.md``; returns the text."""
    text = "\n".join(lines) + "\n"
    print(text)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.md").write_text(text)
    return text


def cpu_name() -> str:
    """The CPU's model name and family (Linux ``/proc/cpuinfo``; AMD family 26 is Zen 5), else the platform's word."""
    info = Path("/proc/cpuinfo")
    if info.exists():
        fields = dict(line.split(":", 1) for line in info.read_text().splitlines() if ":" in line)
        fields = {k.strip(): v.strip() for k, v in fields.items()}
        return f"{fields.get('model name', '?')}, family {fields.get('cpu family', '?')}"
    return platform.processor() or platform.machine()
