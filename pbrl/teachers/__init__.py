"""Teachers: synthetic (B-Pref), and the registry that builds one from a config."""

from pbrl.teachers.base import Teacher
from pbrl.teachers.synthetic import PRESETS, SyntheticTeacher, SyntheticTeacherConfig, preset

__all__ = ["PRESETS", "SyntheticTeacher", "SyntheticTeacherConfig", "Teacher", "preset"]
