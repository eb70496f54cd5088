"""Preference learners."""

from pbrl.learners.advantage import AdvantageConfig, AdvantageLearner
from pbrl.learners.base import PreferenceLearner, RewardLearner
from pbrl.learners.bradley_terry import BTEnsemble, BTEnsembleConfig, bradley_terry_loss
from pbrl.learners.hindsight_prior import HindsightPrior, HindsightPriorConfig, prior_loss
from pbrl.learners.reed import REED, REEDConfig

__all__ = ["AdvantageConfig", "AdvantageLearner", "BTEnsemble", "BTEnsembleConfig", "HindsightPrior", "HindsightPriorConfig", "PreferenceLearner", "REED", "REEDConfig", "RewardLearner", "bradley_terry_loss", "prior_loss"]
