"""Teachers: synthetic (B-Pref), regret (Knox et al.), and the registry that builds one from a config."""

from pbrl.teachers.base import Teacher
from pbrl.teachers.regret import RegretTeacher
from pbrl.teachers.synthetic import PRESETS, SyntheticTeacher, SyntheticTeacherConfig, preset

__all__ = ["PRESETS", "RegretTeacher", "SyntheticTeacher", "SyntheticTeacherConfig", "Teacher", "preset"]
