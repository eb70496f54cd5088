"""An expert's optimal advantage from a stable-baselines3 SAC agent (for the regret teacher).

A SAC agent trained on the true reward (``pbrl train --method sac``, which saves
``<run>/checkpoint/agent.zip``) approximates ``Q*`` with its twin critics and ``π*`` with
its actor. Its advantage is

    A(s, a) = Q(s, a) − E_{a'∼π(·|s)} Q(s, a'),   Q = min(Q₁, Q₂),

the expectation estimated with ``samples`` actions drawn from the actor (the same noise
on every call, so labels are reproducible; the global torch RNG is left untouched).
Actions are in SAC's squashed [−1, 1] space — what pbrl logs and what the critic takes.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from stable_baselines3 import SAC


def load_expert(path: str | Path, device: str = "cpu") -> SAC:
    """Load a saved SAC agent (e.g. ``runs/…-sac-s0-…/checkpoint/agent.zip``)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(
            f"no SAC expert at {path}; train one with `pbrl train --method sac …` and pass "
            "its checkpoint/agent.zip as teacher.expert"
        )
    return SAC.load(path, device=device)


def expert_advantage(path: str | Path, samples: int = 16, seed: int = 0) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """The regret teacher's advantage from a saved SAC agent (``teacher.expert``, ``teacher.expert_samples``)."""
    return sac_advantage(load_expert(path), samples, seed=seed)


def sac_advantage(
    model: SAC, samples: int = 16, seed: int = 0, batch_size: int = 4096
) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """``A(s, a)`` of a SAC agent as a numpy callable ``(obs [N, d], actions [N, a]) → [N]``."""
    if samples < 1:
        raise ValueError(f"samples must be ≥ 1, got {samples}")
    critic, actor, device = model.critic, model.actor, model.device

    def q_min(obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        return torch.min(torch.cat(critic(obs, actions), dim=1), dim=1).values

    @torch.no_grad()
    def advantage(obs: np.ndarray, actions: np.ndarray) -> np.ndarray:
        obs_t = torch.as_tensor(np.asarray(obs, np.float32), device=device)
        act_t = torch.as_tensor(np.asarray(actions, np.float32), device=device)
        out = []
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            for i in range(0, len(obs_t), batch_size):
                o, a = obs_t[i : i + batch_size], act_t[i : i + batch_size]
                repeated = o.repeat_interleave(samples, dim=0)
                sampled, _ = actor.action_log_prob(repeated)
                baseline = q_min(repeated, sampled).reshape(len(o), samples).mean(dim=1)
                out.append(q_min(o, a) - baseline)
        return torch.cat(out).cpu().numpy() if out else np.zeros(0, np.float32)

    return advantage
