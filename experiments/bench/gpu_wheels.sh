#!/usr/bin/env bash
# Download, HERE (where PyPI is reachable), the wheels that gpu_check.sh installs on the lent
# GPU machine, whose image has python3 3.12 with torch, numpy, pandas, matplotlib, h5py,
# tensorboard, absl-py, etils, cloudpickle, pyyaml, lxml but no registry access
# (/work/.library/device/KINDS.md). They land in .whl/ (git-ignored) and travel with
# `carry: [".whl"]`. Versions: the ones this project's .venv resolved (pyproject.toml pins).
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PYTHON:-python3}
platforms=(--platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64
           --platform manylinux2014_x86_64 --platform manylinux1_x86_64 --platform any)
download() { "$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
             "${platforms[@]}" -d .whl "$@"; }
download gymnasium==1.4.0 farama-notifications==0.0.4 mujoco==3.3.0 glfw==2.11.0 pyopengl==3.1.10 \
         stable-baselines3==2.9.2 omegaconf==2.4.0 sqlalchemy==2.1.9 greenlet==3.5.6 \
         dm-control==1.0.28 dm-tree==0.1.10 labmaze==1.0.6 shimmy==2.0.1
# the carried tree must stay under 64 MiB: dm_control without its locomotion assets (39 of 56 MB;
# the control suite, which dmc:* ids use, does not need them); MetaWorld is not carried (imported lazily)
"$PY" - <<'PYEOF'
import pathlib, zipfile
src = next(pathlib.Path(".whl").glob("dm_control-*.whl"))
slim = src.with_suffix(".slim")
with zipfile.ZipFile(src) as zin, zipfile.ZipFile(slim, "w", zipfile.ZIP_DEFLATED) as zout:
    for item in zin.infolist():
        if item.filename.startswith("dm_control/locomotion/"):
            continue
        data = zin.read(item.filename)
        if item.filename.endswith(".dist-info/RECORD"):
            data = b"\n".join(line for line in data.split(b"\n") if not line.startswith(b"dm_control/locomotion/"))
        zout.writestr(item, data)
slim.replace(src)
PYEOF
# antlr4-python3-runtime (omegaconf's parser) ships only as an sdist: build its pure-python wheel here
"$PY" -m pip wheel -q --no-deps -w .whl antlr4-python3-runtime==4.9.3
du -sh .whl
