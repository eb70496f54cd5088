"""The README's install, done as a new user would: a fresh virtualenv, the README's commands
one by one in a copy of the repository, then every suite made, stepped and rendered. Also
``pbrl doctor`` on this environment, and on one whose MuJoCo is broken."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SUITE_ENVS = ["gym:HalfCheetah-v5", "metaworld:door-open-v3", "dmc:walker-walk"]


def readme_install_commands() -> list[str]:
    """The commands of the first ``bash`` block under the README's "## Install" heading."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("\n## Install\n", 1)
    assert len(section) == 2, "README.md has no '## Install' section"
    block = re.search(r"```bash\n(.*?)```", section[1], re.S)
    assert block, "README.md's Install section has no ```bash block"
    commands = [line.split(" #")[0].strip() for line in block.group(1).splitlines()]
    return [c for c in commands if c and not c.startswith("#")]


def _copy_repository(target: Path) -> None:
    """The repository's tracked files as they are now (a fresh clone of this work tree)."""
    files = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout.split(b"\0")
    for name in filter(None, (f.decode() for f in files)):
        source = ROOT / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)


def _installed(python: Path, env: dict[str, str]) -> dict[str, str]:
    """Versions of the MuJoCo packages (monolithic or split) and MetaWorld in that environment."""
    listing = subprocess.run([str(python), "-m", "pip", "list", "--format=freeze"], capture_output=True, text=True,
                             env=env, check=True).stdout
    pairs = (line.split("==") for line in listing.splitlines() if "==" in line)
    return {name.lower(): version for name, version in pairs
            if name.lower() in ("mujoco", "mujoco-core", "mujoco-studio", "metaworld")}


def test_readme_install_block_is_the_documented_sequence() -> None:
    commands = readme_install_commands()
    assert commands[0].startswith("python3 -m venv .venv")
    assert any("torch==2.13.0" in c for c in commands)  # the CPU wheel first, before pbrl
    assert commands[-1] == ".venv/bin/pip install -e '.[dmc]'"  # DeepMind Control added afterwards


@pytest.mark.slow
@pytest.mark.timeout(2400)  # a cold pip cache downloads ~1 GB
def test_readme_install_then_dmc_makes_steps_and_renders_every_suite(tmp_path: Path) -> None:
    repo = tmp_path / "pbrl"
    _copy_repository(repo)
    env = {key: value for key, value in os.environ.items() if not key.startswith(("VIRTUAL_ENV", "PYTHONPATH"))}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    python = repo / ".venv" / "bin" / "python"
    mujoco_before_dmc = None
    for command in readme_install_commands():
        if command.endswith("'.[dmc]'"):
            mujoco_before_dmc = _installed(python, env)
        result = subprocess.run(["bash", "-c", command], cwd=repo, env=env, capture_output=True, text=True,
                                timeout=1500)
        assert result.returncode == 0, f"{command}\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}"

    pip = lambda *args: subprocess.run([str(python), "-m", "pip", *args], capture_output=True, text=True, env=env)  # noqa: E731
    assert pip("check").returncode == 0, pip("check").stdout
    mujoco_after = _installed(python, env)
    assert mujoco_after == mujoco_before_dmc, (mujoco_before_dmc, mujoco_after)  # the dmc extra changed no MuJoCo
    assert set(mujoco_after) == {"mujoco", "metaworld"}  # never the split MuJoCo 4 packages (mujoco-core…)
    probe = (
        "import numpy as np\n"
        "from pbrl import envs\n"
        f"for env_id in {SUITE_ENVS!r}:\n"
        "    env = envs.make(env_id, seed=0)\n"
        "    _, info = env.reset(seed=0)\n"
        "    for _ in range(5):\n"
        "        _, _, _, _, info = env.step(env.action_space.sample())\n"
        "    frame = envs.render_states(env, info['sim_state'][None], 48, 48)[0]\n"
        "    assert frame.shape == (48, 48, 3) and frame.std() > 1, env_id\n"
        "    print(env_id, 'ok')\n"
    )
    result = subprocess.run([str(python), "-c", probe], cwd=tmp_path, env=env, capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.split() == [word for env_id in SUITE_ENVS for word in (env_id, "ok")]
    doctor = subprocess.run([str(repo / ".venv" / "bin" / "pbrl"), "doctor"], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=600)
    assert doctor.returncode == 0 and "verdict           ready" in doctor.stdout, doctor.stdout + doctor.stderr


def test_doctor_reports_versions_and_a_verdict_per_suite(capsys: pytest.CaptureFixture[str]) -> None:
    from importlib.metadata import version

    from pbrl.experiments.doctor import doctor

    dmc = True
    try:
        import shimmy  # noqa: F401
    except ImportError:
        dmc = False
    assert doctor(backends=False) == 0
    out = capsys.readouterr().out
    assert re.search(rf"^mujoco +{re.escape(version('mujoco'))}$", out, re.M)
    assert re.search(rf"^gymnasium +{re.escape(version('gymnasium'))}$", out, re.M)
    assert re.search(r"^CUDA +(not visible|visible)", out, re.M)
    assert re.search(r"^  gym +ok +gym:HalfCheetah-v5: made, stepped", out, re.M)
    assert re.search(r"^  metaworld +ok +metaworld:door-open-v3: made, stepped", out, re.M)
    assert re.search(r"^  dmc +ok +dmc:walker-walk" if dmc else r"^  dmc +missing .*\[dmc\]", out, re.M)
    assert out.rstrip().endswith("ready")


def test_doctor_on_a_broken_mujoco_prints_the_repair_and_fails(tmp_path: Path) -> None:
    fake = tmp_path / "mujoco"
    fake.mkdir()
    (fake / "__init__.py").write_text("raise ImportError(\"The 'mujoco' package is installed, but its core bindings "
                                      "('mujoco-core') are missing or corrupted\")\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])}
    result = subprocess.run([sys.executable, "-m", "pbrl.experiments.doctor", "--no-backends"], env=env, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    line = next(line for line in result.stdout.splitlines() if line.startswith("MuJoCo"))
    assert "FAIL" in line and "mujoco-core" in line and "-m pip uninstall -y mujoco mujoco-core mujoco-studio" in line
