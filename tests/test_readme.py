"""The README's Python example runs as written (shrunk to seconds by overrides appended to its own)."""

import re
from pathlib import Path

import pbrl
from pbrl.experiments import config as config_module
from tests.test_training import TINY

README = Path(__file__).resolve().parents[1] / "README.md"


def python_example() -> str:
    """The fenced ```python block under '## From Python'."""
    section = README.read_text().split("## From Python", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S)[1]


def test_readme_python_example_runs(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # its run_dir (runs/hopper) lands here
    shrink = [o for o in TINY if not o.startswith("env=")] + ["steps=400", "feedback.budget=5"]
    parse = config_module.parse_config
    monkeypatch.setattr(pbrl, "parse_config", lambda data, overrides=(): parse(data, [*overrides, *shrink]))
    exec(compile(python_example(), str(README), "exec"), {})
    assert (tmp_path / "runs" / "hopper" / "checkpoint" / "state.json").exists()
    printed = capsys.readouterr().out.split()
    assert float(printed[-1]) == 5.0  # teacher/labeled: the shrunk budget, all answered
