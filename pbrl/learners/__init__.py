"""Preference learners."""

from pbrl.learners.advantage import AdvantageConfig, AdvantageLearner
from pbrl.learners.base import PreferenceLearner, RewardLearner
from pbrl.learners.bradley_terry import BTEnsemble, BTEnsembleConfig, bradley_terry_loss
from pbrl.learners.cpl import CPL, BehaviourCloning, CPLConfig, cpl_loss
from pbrl.learners.hindsight_prior import HindsightPrior, HindsightPriorConfig, prior_loss
from pbrl.learners.ipl import IPL, IPLConfig, ipl_critic_loss
from pbrl.learners.piql import PreferenceIQL
from pbrl.learners.policies import PolicyLearner
from pbrl.learners.preference_transformer import EpisodeRewards, PreferenceTransformer, PreferenceTransformerConfig
from pbrl.learners.reed import REED, REEDConfig
from pbrl.learners.rime import RIME, RIMEConfig
from pbrl.learners.surf import SURF, SURFConfig

__all__ = ["AdvantageConfig", "AdvantageLearner", "BTEnsemble", "BTEnsembleConfig", "BehaviourCloning", "CPL", "CPLConfig", "HindsightPrior", "HindsightPriorConfig", "IPL", "IPLConfig", "EpisodeRewards", "PolicyLearner", "PreferenceIQL", "PreferenceLearner", "PreferenceTransformer", "PreferenceTransformerConfig", "REED", "REEDConfig", "RIME", "RIMEConfig", "RewardLearner", "SURF", "SURFConfig", "bradley_terry_loss", "cpl_loss", "ipl_critic_loss", "prior_loss"]
