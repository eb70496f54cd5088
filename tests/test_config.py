"""Configs: YAML round trip, overrides, and clear errors for bad input."""

import math

import pytest

from pbrl import envs
from pbrl.experiments.cli import main
from pbrl.experiments.config import ConfigError, TrainConfig, apply_overrides, from_dict, load_yaml, save_yaml, to_dict


def test_yaml_round_trip_preserves_every_field(tmp_path):
    config = from_dict(TrainConfig, {"teacher": {"preset": "stoc"}, "reward": {"hidden_sizes": [32, 32]}})
    save_yaml(config, tmp_path / "c.yaml")
    again = from_dict(TrainConfig, load_yaml(tmp_path / "c.yaml"))
    assert again == config
    assert again.reward.hidden_sizes == (32, 32) and again.teacher.synthetic().beta == 1.0


def test_overrides_are_typed():
    data = apply_overrides({}, ["feedback.budget=1e3", "sac.device=cuda", "teacher.beta=inf", "progress=false"])
    config = from_dict(TrainConfig, data)
    assert config.feedback.budget == 1000 and config.sac.device == "cuda"
    assert math.isinf(config.teacher.beta) and config.progress is False


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["feedback.budgt=3"], "unknown config key 'feedback.budgt'"),
        (["feedback.budget=-1"], "feedback.budget must be ≥ 0"),
        (["feedback.budget=ten"], "feedback.budget='ten' is not a valid int"),
        (["method=dpo"], "method='dpo' is unknown"),
        (["teacher.preset=perfect"], "teacher.preset=.perfect. is unknown"),
        (["teacher.eps_mistake=2"], "teacher.eps_mistake"),
        (["reward=3"], "reward is a section"),
    ],
)
def test_bad_config_names_the_problem(overrides, message):
    with pytest.raises(ConfigError, match=message):
        from_dict(TrainConfig, apply_overrides({}, overrides))


def test_unknown_env_lists_valid_ids():
    with pytest.raises(envs.UnknownEnvError) as error:
        envs.make("gym:HalfCheeta-v5")
    assert "gym:HalfCheetah-v5" in str(error.value) and "metaworld:door-open-v3" in str(error.value)


def test_cli_reports_config_errors_with_exit_code_2(capsys, tmp_path):
    assert main(["train", "--feedback", "-5", "--run-dir", str(tmp_path / "r")]) == 2
    assert "feedback.budget must be ≥ 0" in capsys.readouterr().err
    assert main(["config", "--set", "feedback.segment_lenght=5"]) == 2
    assert "segment_lenght" in capsys.readouterr().err


def test_every_published_config_loads():
    from pathlib import Path

    for path in sorted(Path("experiments/configs").glob("*.yaml")):
        config = from_dict(TrainConfig, load_yaml(path))
        assert to_dict(config)["env"] == config.env


def test_unknown_learner_or_teacher_type_lists_the_registered_ones():
    from pbrl.experiments.builders import EnvSpec, build_learner, build_teacher

    spec = EnvSpec("gym:HalfCheetah-v5", 17, 6, 1000)
    with pytest.raises(ConfigError, match="learner='magic' is unknown; choose one of .*bt"):
        build_learner(from_dict(TrainConfig, {"learner": "magic"}), spec)
    with pytest.raises(ConfigError, match="teacher.type='psychic' is unknown; choose one of .*synthetic"):
        build_teacher(from_dict(TrainConfig, {"teacher": {"type": "psychic"}}), spec)
