"""Everything installs under the one name ``pbrl``: the wheel holds no top-level ``envs``,
``agents`` or ``experiments`` package, so a user's own packages of those names still win."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import tomllib
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MAPPED = {"pbrl": "pbrl", "pbrl.envs": "envs", "pbrl.agents": "agents", "pbrl.experiments": "experiments"}


def test_package_list_covers_every_source_folder():
    """pyproject's explicit package list (needed for the folder mapping) names every folder with Python files."""
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert setuptools["package-dir"] == MAPPED
    found = set()
    for name, folder in MAPPED.items():
        for init in (ROOT / folder).rglob("*.py"):
            rel = init.parent.relative_to(ROOT / folder)
            if "results" in rel.parts or "__pycache__" in rel.parts:
                continue
            found.add(".".join([name, *rel.parts]))
    assert found == set(setuptools["packages"]), "add the new folder to [tool.setuptools] packages in pyproject.toml"


def test_no_source_file_imports_a_top_level_alias():
    """``import envs`` would load a second copy of pbrl.envs from the source tree (or a user's own envs)."""
    offenders = []
    for path in ROOT.rglob("*.py"):
        if ".venv" in path.parts or path.name == "test_packaging.py":
            continue
        for line in path.read_text().splitlines():
            stripped = line.strip()
            if stripped.startswith(("import envs", "import agents", "import experiments", "from envs", "from agents", "from experiments")):
                offenders.append(f"{path.relative_to(ROOT)}: {stripped}")
    assert not offenders, offenders


def test_wheel_installs_under_one_name_beside_a_users_envs(tmp_path):
    wheels = tmp_path / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(wheels), str(ROOT)],
        check=True, capture_output=True, text=True,
    )
    (wheel,) = wheels.glob("pbrl-*.whl")
    tops = {name.split("/")[0] for name in zipfile.ZipFile(wheel).namelist()}
    assert {t for t in tops if not t.endswith((".dist-info", ".data"))} == {"pbrl"}, tops
    entry_points = next(n for n in zipfile.ZipFile(wheel).namelist() if n.endswith("entry_points.txt"))
    assert "pbrl = pbrl.experiments.cli:main" in zipfile.ZipFile(wheel).read(entry_points).decode()

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = Path(subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               check=True, capture_output=True, text=True).stdout.strip())
    # pbrl's dependencies come from this interpreter's site-packages (added as a plain path, so
    # its .pth files — among them the editable pbrl finder — are not run).
    (site / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    with zipfile.ZipFile(wheel) as archive:  # a wheel is a zip laid out for site-packages
        archive.extractall(site)
    user = tmp_path / "user"
    (user / "envs").mkdir(parents=True)
    (user / "envs" / "__init__.py").write_text("WHO = 'the user'\n")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH",)}
    check = (
        "import envs, pbrl, pbrl.envs, pbrl.experiments.cli, pathlib;"
        "assert envs.WHO == 'the user', envs.__file__;"
        f"assert pathlib.Path(pbrl.__file__).is_relative_to({str(site)!r}), pbrl.__file__;"
        f"assert pathlib.Path(pbrl.envs.__file__).is_relative_to({str(site)!r}), pbrl.envs.__file__;"
        "from pbrl.experiments.cli import main;"
        "import sys; sys.argv = ['pbrl', 'train', '--help'];"
        "main()"
    )
    result = subprocess.run([python, "-c", check], cwd=user, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "usage: pbrl train" in result.stdout
