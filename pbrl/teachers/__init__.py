"""Teachers: synthetic (B-Pref), regret (Knox et al.), human (a labeling web page)."""

from pbrl.teachers.base import QueuedTeacher, Teacher
from pbrl.teachers.human import HumanTeacher, HumanTeacherConfig
from pbrl.teachers.regret import RegretTeacher, RegretTeacherConfig
from pbrl.teachers.synthetic import PRESETS, SyntheticTeacher, SyntheticTeacherConfig

__all__ = ["PRESETS", "HumanTeacher", "HumanTeacherConfig", "QueuedTeacher", "RegretTeacher", "RegretTeacherConfig", "SyntheticTeacher", "SyntheticTeacherConfig", "Teacher"]
