"""Preference learners."""

from pbrl.learners.base import PreferenceLearner, RewardLearner
from pbrl.learners.bradley_terry import BTEnsemble, BTEnsembleConfig, bradley_terry_loss

__all__ = ["BTEnsemble", "BTEnsembleConfig", "PreferenceLearner", "RewardLearner", "bradley_terry_loss"]
