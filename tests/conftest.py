"""Test-wide settings: one torch thread (small MLPs, 2-core CI), headless MuJoCo."""

import os

os.environ.setdefault("MUJOCO_GL", "egl")

import torch  # noqa: E402

torch.set_num_threads(1)

from tests.postgres import store_location  # noqa: E402, F401  (a store on SQLite, then on PostgreSQL)
