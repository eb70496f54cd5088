"""Acquisition scores over an ensemble's preference predictions.

All functions take ``probs`` shaped ``[E, B]``: ``probs[e, i] = P_e[left_i ≻ right_i]``,
member ``e``'s Bradley–Terry probability (``RewardLearner.pair_probabilities``), and
return one score per pair, ``[B]`` (larger = more worth asking). Entropies are in nats.
"""

from __future__ import annotations

import numpy as np

_EPS = 1e-12


def binary_entropy(p: np.ndarray) -> np.ndarray:
    """``H(p) = −p log p − (1 − p) log(1 − p)`` (0 at p ∈ {0, 1}, log 2 at p = ½)."""
    p = np.clip(np.asarray(p, dtype=np.float64), _EPS, 1.0 - _EPS)
    return -(p * np.log(p) + (1.0 - p) * np.log1p(-p))


def disagreement(probs: np.ndarray) -> np.ndarray:
    """Ensemble disagreement ``std_e P_e[σ¹ ≻ σ²]`` (population std, as B-Pref's ``np.std``)."""
    return np.asarray(probs, dtype=np.float64).std(axis=0)


def predictive_entropy(probs: np.ndarray) -> np.ndarray:
    """Entropy of the ensemble-mean preference ``H[p̄]``, ``p̄ = (1/E) Σ_e P_e[σ¹ ≻ σ²]``.

    The total predictive uncertainty: ``H[p̄] = (1/E) Σ_e H(P_e) + I(y; θ)`` (expected
    entropy + BALD), so unlike :func:`expected_entropy` it also grows where members disagree.
    """
    return binary_entropy(np.asarray(probs, dtype=np.float64).mean(axis=0))


def expected_entropy(probs: np.ndarray) -> np.ndarray:
    """Members' mean entropy ``E_θ H[P_θ] = (1/E) Σ_e H(P_e)`` (the aleatoric part).

    B-Pref's entropy score (``reward_model.py`` ``get_entropy``: the mean over members of
    ``|Σ softmax(r̂) · log_softmax(r̂)|``, i.e. of ``H(P_e)``).
    """
    return binary_entropy(probs).mean(axis=0)


def bald(probs: np.ndarray) -> np.ndarray:
    """BALD / expected information gain about the reward model from the label ``y``:

    ``I(y; θ) = H[E_θ P_θ(y)] − E_θ H[P_θ(y)] = H[p̄] − (1/E) Σ_e H(P_e)``

    with the ensemble members as samples of θ (Houlsby et al., 2011). It is ≥ 0, zero when
    all members agree (however uncertain each is), and large where confident members
    contradict each other.
    """
    return np.maximum(predictive_entropy(probs) - expected_entropy(probs), 0.0)


def top_n(scores: np.ndarray, n: int) -> np.ndarray:
    """Indices of the ``n`` largest scores (ties: lower index first)."""
    return np.argsort(-np.asarray(scores), kind="stable")[:n]
