"""Teachers: synthetic (B-Pref), regret (Knox et al.), human (a labeling web page)."""

from pbrl.teachers.base import Teacher
from pbrl.teachers.human import HumanTeacher, HumanTeacherConfig
from pbrl.teachers.regret import RegretTeacher
from pbrl.teachers.synthetic import PRESETS, SyntheticTeacher, SyntheticTeacherConfig, preset

__all__ = ["PRESETS", "HumanTeacher", "HumanTeacherConfig", "RegretTeacher", "SyntheticTeacher", "SyntheticTeacherConfig", "Teacher", "preset"]
