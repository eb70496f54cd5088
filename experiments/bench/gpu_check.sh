#!/usr/bin/env bash
# GPU speed check (issue 11): prints ONE JSON line — CUDA steps/s of SB3 SAC vs FastSAC vs the
# full PEBBLE loop (gym:HalfCheetah-v5, dmc:walker-walk), relabel time of 1M transitions,
# reward-ensemble update time (128 pairs × 50 steps, 3×256), peak GPU memory. Under 8 minutes
# on one H200. Fails soft: each measurement that fails is marked {"error": ...} and listed in
# "failed"; if Python itself cannot start the check, a JSON line says why.
#
# The lent machine is bare (only the repo is copied) and cannot reach PyPI; its python3 has
# torch, numpy, pandas, matplotlib, h5py, tensorboard, … but not gymnasium, MuJoCo, SB3,
# dm_control, omegaconf, SQLAlchemy (/work/.library/device/KINDS.md). So first, HERE:
#     experiments/bench/gpu_wheels.sh          # → .whl/ (~37 MB, git-ignored)
# then on the device: run(command="bash experiments/bench/gpu_check.sh $OUT/gpu_check.json",
#                         carry=[".whl"], timeout_s=540)
# Elsewhere (a machine with PyPI): pip install -e '.[dmc]' first, then run this script.
set -u
cd "$(dirname "$0")/../.."
PY=${PYTHON:-python3}
OUT_JSON=${1:-}
export PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
if ! "$PY" -c "import pbrl.agents.fast_sac" 2>/dev/null; then
    SITE=${PBRL_SITE:-/tmp/pbrl-site}
    if [ -d .whl ]; then
        "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" .whl/*.whl \
            || { echo '{"failed": ["install"], "error": "pip install of .whl/ failed"}'; exit 0; }
    fi
    # pbrl itself (its folders map to pbrl.envs, pbrl.agents, pbrl.experiments): a plain, offline build
    "$PY" -m pip install -q --no-index --no-deps --no-build-isolation --no-compile --target "$SITE" . \
        || { echo '{"failed": ["install"], "error": "pip install of the repo failed (setuptools>=61 needed)"}'; exit 0; }
    export PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}"
fi
nvidia-smi --query-gpu=name,memory.used,memory.total,clocks.sm --format=csv,noheader >&2 || true
PARTIAL=${OUT_JSON:-/tmp/gpu_check.partial.json}
[ $# -gt 0 ] && shift
timeout "${CHECK_TIMEOUT_S:-450}" "$PY" -m pbrl.experiments.bench.gpu_check --device "${DEVICE:-cuda}" --out "$PARTIAL" "$@"
rc=$?
if [ $rc -ne 0 ]; then  # killed or crashed: the measurements so far, marked
    "$PY" - "$PARTIAL" "$rc" <<'PYEOF'
import json, sys
try:
    result = json.load(open(sys.argv[1]))
except Exception:
    result = {}
result.setdefault("failed", []).append("timeout" if sys.argv[2] == "124" else f"exit {sys.argv[2]}")
result["complete"] = False
print(json.dumps(result))
PYEOF
fi
exit 0
