"""Configs: typed sections, the --method shortcut, clear errors, every published file, legacy run directories."""

import math
from pathlib import Path

import pytest
import yaml

from pbrl import envs
from pbrl.experiments.cli import main
from pbrl.experiments.config import (
    ConfigError,
    convert_legacy_config,
    describe,
    load_run_config,
    load_yaml,
    parse_config,
    save_yaml,
    to_dict,
)
from pbrl.registry import LEARNERS, TEACHERS, BuildContext

CONFIGS = sorted(Path("experiments/configs").glob("*.yaml"))


def test_yaml_round_trip_preserves_every_field(tmp_path):
    config = parse_config({"teacher": {"preset": "stoc"}, "learner": {"type": "hprior", "hidden_sizes": [32, 32]}})
    save_yaml(config, tmp_path / "c.yaml")
    again = parse_config(load_yaml(tmp_path / "c.yaml"))
    assert again == config
    assert again.learner.hidden_sizes == (32, 32) and again.teacher.resolved().beta == 1.0


@pytest.mark.parametrize("overrides", [["method=sac"], ["method=cpl", "reward_free.dataset=x.h5"], ["method=piql"],
                                       ["method=pref-ppo", "learner.type=reed"], ["teacher.type=human", "teacher.annotators=[a,b]"]])
def test_every_kind_of_run_round_trips(overrides):
    config = parse_config({}, overrides)
    assert parse_config(yaml.safe_load(yaml.safe_dump(to_dict(config)))) == config


def test_overrides_are_typed():
    config = parse_config({}, ["feedback.budget=1000", "agent.device=cuda", "teacher.beta=inf", "progress=false"])
    assert config.feedback.budget == 1000 and config.agent.device == "cuda"
    assert math.isinf(config.teacher.beta) and config.progress is False


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["feedback.budgt=3"], "unknown config key 'feedback.budgt'"),
        (["feedback.budget=-1"], "feedback.budget must be ≥ 0"),
        (["feedback.budget=ten"], "feedback.budget"),
        (["method=dpo"], "method='dpo' is unknown"),
        (["learner.type=magic"], "learner.type='magic' is unknown; choose one of .*bt"),
        (["teacher.type=psychic"], "teacher.type='psychic' is unknown; choose one of .*synthetic"),
        (["teacher.preset=perfect"], "teacher.preset=.perfect. is unknown"),
        (["teacher.eps_mistake=2"], "teacher.eps_mistake"),
        (["learner.mode=greedy"], "unknown config key 'learner.mode'"),  # a key of another learner type
        (["learner=3"], "learner is a section"),
        (["agent.impl=warp"], "agent.impl='warp' is unknown; choose one of .*sb3"),
        (["method=cpl", "agent.batch_size=3"], "section 'agent' is not used"),
        (["method=sac", "feedback.budget=3"], "section 'feedback' is not used"),
    ],
)
def test_bad_config_names_the_problem(overrides, message):
    with pytest.raises(ConfigError, match=message):
        parse_config({}, overrides)


def test_method_shortcut_expands_into_learner_and_agent_types():
    assert (parse_config({}, ["method=pref-ppo"]).learner_type, parse_config({}, ["method=pref-ppo"]).agent_type) == ("bt", "ppo")
    sac = parse_config({}, ["method=sac"])
    assert sac.learner is None and sac.agent_type == "sac" and sac.teacher is None and sac.feedback is None
    cpl = parse_config({}, ["method=cpl", "learner.lr=0.01"])  # a section's keys stay with the type it names
    assert cpl.learner_type == "cpl" and cpl.learner.lr == 0.01 and cpl.agent is None and cpl.reward_free is not None
    kept = parse_config({"learner": {"type": "hprior"}}, ["method=pebble"])  # a reward learner already chosen stays
    assert kept.learner_type == "hprior" and kept.method == "hprior-sac"


def test_cross_section_rules():
    assert parse_config({}, ["method=sac"]).agent.unsupervised_pretraining is False  # nothing would end it
    with pytest.raises(ConfigError, match="learner.mode=greedy .* PPO"):
        parse_config({}, ["method=pref-ppo", "learner.type=advantage", "learner.mode=greedy"])


def test_unknown_env_lists_valid_ids():
    with pytest.raises(envs.UnknownEnvError) as error:
        envs.make("gym:HalfCheeta-v5")
    assert "gym:HalfCheetah-v5" in str(error.value) and "metaworld:door-open-v3" in str(error.value)


def test_cli_reports_config_errors_with_exit_code_2(capsys, tmp_path):
    assert main(["train", "--feedback", "-5", "--run-dir", str(tmp_path / "r")]) == 2
    assert "feedback.budget must be ≥ 0" in capsys.readouterr().err
    assert main(["config", "--set", "feedback.segment_lenght=5"]) == 2
    assert "feedback.segment_lenght" in capsys.readouterr().err


@pytest.mark.parametrize("path", CONFIGS, ids=[p.name for p in CONFIGS])
def test_every_published_config_prints_only_the_sections_its_run_uses(path, capsys):
    assert main(["config", "--config", str(path)]) == 0
    resolved = yaml.safe_load(capsys.readouterr().out)
    config = parse_config(resolved)
    sections = {k for k, v in resolved.items() if isinstance(v, dict)}
    expected = {"learner"}
    expected |= {"reward_free"} if config.reward_free_learner else {"agent"}
    expected |= set() if config.offline else {"teacher", "feedback", "query"}
    assert sections == expected
    for name in ("learner", "agent", "teacher"):
        if name in resolved:  # a typed section holds exactly its type's keys
            assert set(resolved[name]) == {"type"} | set(to_dict(getattr(config, name)))


def test_describe_lists_every_key_of_every_type():
    text = "\n".join(describe())
    for name in LEARNERS.names():
        assert f"[learner.type={name}]" in text
    for name in TEACHERS.names():
        assert f"[teacher.type={name}]" in text
    for key in ("learner.mode = 'greedy'", "learner.reward.max_epochs = 200", "agent.impl = 'sb3'", "agent.n_envs = 4",
                "teacher.expert_samples = 16", "teacher.annotators_per_pair = 1", "reward_free.holdout = 0.1", "feedback.budget = 1000"):
        assert key in text, key
    assert all("    " in line and line.split("    ", 1)[1].strip() for line in describe() if " = " in line and "type =" not in line)


# ---------------------------------------------------------------------------- legacy run directories
LEGACY = Path(__file__).parent / "data" / "legacy_config.yaml"  # written by the code of commit 17dcaa4 (pbrl config)


def test_a_legacy_run_config_converts_to_the_same_run():
    old = load_yaml(LEGACY)
    new = convert_legacy_config(old)
    config = parse_config(new)
    assert (config.learner_type, config.agent_type, config.teacher_type) == ("advantage", "sac", "regret")
    assert config.learner.mode == old["regret"]["mode"] and config.learner.hidden_sizes == tuple(old["reward"]["hidden_sizes"])
    assert config.agent.batch_size == old["sac"]["batch_size"] and config.feedback.budget == old["feedback"]["budget"]
    assert config.teacher.expert == old["teacher"]["expert"]
    assert parse_config(old) == config  # loading a legacy mapping converts it on the way


@pytest.mark.parametrize("method, learner, kind", [("cpl", "cpl", "reward_free"), ("piql", "piql", "reward_free"),
                                                   ("bc", "bc", "reward_free"), ("pref-ppo", "reed", "agent"), ("sac", None, "agent")])
def test_every_legacy_method_converts(method, learner, kind):
    old = load_yaml(LEGACY) | {"method": method, "learner": "reed"}
    old["teacher"] = {**old["teacher"], "type": "synthetic"}
    old["feedback"] = {**old["feedback"], "absorbing": False}
    config = parse_config(old)
    assert config.learner_type == learner and getattr(config, kind) is not None
    if method == "piql":
        assert config.learner.reward.hidden_sizes == tuple(old["reward"]["hidden_sizes"])
        assert config.learner.expectile == old["ipl"]["expectile"]


def test_resume_of_a_legacy_run_directory_converts_it_and_keeps_the_original(tmp_path, capsys):
    (tmp_path / "config.yaml").write_text(LEGACY.read_text())
    assert main(["config", "--convert", str(tmp_path)]) == 0
    assert "converted" in capsys.readouterr().out
    assert (tmp_path / "config.legacy.yaml").read_text() == LEGACY.read_text()
    converted = load_yaml(tmp_path / "config.yaml")
    assert converted["learner"]["type"] == "advantage" and "method" not in converted
    assert load_run_config(tmp_path, ["steps=5"]).steps == 5


def test_registered_factories_build_from_their_sections():
    ctx = BuildContext("gym:HalfCheetah-v5", 17, 6, 1000, seed=0, segment_length=10)
    for name in LEARNERS.names():
        config = parse_config({}, [f"learner.type={name}"])
        learner = LEARNERS.get(name).factory(config.learner, ctx)
        assert learner is not None


def test_a_plugged_in_learner_is_one_registration(monkeypatch):
    from dataclasses import dataclass

    from pbrl.learners.bradley_terry import BTEnsemble, BTEnsembleConfig
    from pbrl.registry import register_learner

    monkeypatch.setattr(LEARNERS, "_entries", dict(LEARNERS._entries))  # leave the registry as it was

    @dataclass(frozen=True)
    class ToyConfig(BTEnsembleConfig):
        """learner.type=toy."""

        temperature: float = 2.0
        """A key only this type has."""

    register_learner("toy", ToyConfig, lambda c, ctx: BTEnsemble(ctx.obs_dim, ctx.act_dim, c, ctx.seed), "a toy")
    config = parse_config({}, ["learner.type=toy", "learner.temperature=3", "method=pref-ppo"])
    assert config.learner_type == "toy" and config.learner.temperature == 3.0 and config.agent_type == "ppo"
    assert "learner.temperature = 2.0    A key only this type has." in "\n".join(describe())
    with pytest.raises(ValueError, match="already registered"):
        register_learner("toy", ToyConfig, lambda c, ctx: None)
    with pytest.raises(ValueError, match="ToyConfig is already registered as 'toy'"):
        register_learner("toy2", ToyConfig, lambda c, ctx: None)
