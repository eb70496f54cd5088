"""The k-nearest-neighbour distance behind every particle estimate of state entropy in pbrl:
PEBBLE's unsupervised pre-training reward (:mod:`pbrl.agents.state_entropy`) and RIME's warm
start (:mod:`pbrl.learners.rime`)."""

from __future__ import annotations

import torch


def knn_distance(states: torch.Tensor, reference: torch.Tensor, k: int = 5, max_elements: int = 1 << 24) -> torch.Tensor:
    """``‖s − s^{k-NN}‖₂`` of each of ``states`` ``[B, d]`` among ``reference`` ``[N, d]``, ``[B]``.

    The states are themselves in ``reference`` (distance 0 to themselves), so the k-th
    neighbour is the (k+1)-th smallest distance, as in B-Pref's ``compute_state_entropy``
    (``agent/sac.py``). ``k`` is capped at ``N − 1``; with fewer than two reference rows
    every distance is 0. Rows of ``states`` are taken in chunks so that no distance matrix
    holds more than ``max_elements`` entries (64 MiB of float32 by default), whatever B and N.
    """
    k = min(k, len(reference) - 1)
    if k < 1:
        return torch.zeros(len(states), device=states.device)
    rows = max(1, max_elements // len(reference))
    return torch.cat([
        torch.topk(torch.cdist(states[i : i + rows], reference), k + 1, dim=1, largest=False).values[:, -1]  # 6× faster than kthvalue on CPU
        for i in range(0, len(states), rows)
    ])
