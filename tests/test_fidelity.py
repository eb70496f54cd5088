"""Defaults that follow the reference code (issue 13, docs/fidelity.md): each test restates the
reference computation on small inputs and compares it with pbrl's.

References: B-Pref = rll-research/BPref, QPA = huxiao09/QPA, CPL = jhejna/cpl,
IPL = jhejna/inverse-preference-learning.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch
from stable_baselines3.common.vec_env import DummyVecEnv
from torch import nn

from pbrl.agents.config import SACConfig
from pbrl.agents.sac import SACFeedbackHooks, make_sac
from pbrl.augment import qpa_crops
from pbrl.learners import BTEnsemble, BTEnsembleConfig, CPL, CPLConfig, IPLConfig, bradley_terry_loss
from pbrl.learners.bradley_terry import SegmentTensors, smoothed_labels, training_correct
from pbrl.nets import BatchedLinear, mlp
from pbrl.teachers.synthetic import SyntheticTeacher, SyntheticTeacherConfig
from tests.test_cpl import toy_dataset


# ----------------------------------------------------------------------------- B-Pref's reward model
def bpref_soft_loss(r_hat1: torch.Tensor, r_hat2: torch.Tensor, labels: torch.Tensor, label_margin: float) -> torch.Tensor:
    """B-Pref ``reward_model.py`` ``train_soft_reward`` L699–705 with ``softXEnt_loss`` L142–144;
    ``labels``: 0 = σ¹ preferred, 1 = σ², −1 = equal (``label_target = 1 − 2·margin``, L140)."""
    r_hat = torch.cat([r_hat1, r_hat2], dim=-1)  # [B, 2]
    labels = labels.clone()
    uniform_index = labels == -1
    labels[uniform_index] = 0
    target_onehot = torch.zeros_like(r_hat).scatter(1, labels.unsqueeze(1), 1 - 2 * label_margin)
    target_onehot += label_margin
    if sum(uniform_index) > 0:
        target_onehot[uniform_index] = 0.5
    logprobs = torch.nn.functional.log_softmax(r_hat, dim=1)
    return -(target_onehot * logprobs).sum() / r_hat.shape[0]


def bpref_correct(r_hat1: torch.Tensor, r_hat2: torch.Tensor, labels: torch.Tensor) -> int:
    """B-Pref ``train_soft_reward`` L699–711: ½ labels become class 0, then ``torch.max`` (first index on ties)."""
    r_hat = torch.cat([r_hat1, r_hat2], dim=-1)
    labels = labels.clone()
    labels[labels == -1] = 0
    _, predicted = torch.max(r_hat.data, 1)
    return int((predicted == labels).sum().item())


def as_pbrl(labels: torch.Tensor) -> torch.Tensor:
    """B-Pref's label (1 = σ² preferred, −1 = equal) as pbrl's y = P[σ¹ ≻ σ²]."""
    return torch.where(labels == -1, torch.tensor(0.5), 1.0 - labels.float())


R1 = torch.tensor([[0.3], [1.2], [-0.4], [0.0], [2.0], [0.7]])
R2 = torch.tensor([[0.1], [1.5], [-0.4], [0.0], [-1.0], [0.9]])
LABELS = torch.tensor([0, 1, 0, -1, -1, 0])  # ties on rows 2 and 3


@pytest.mark.parametrize("margin", [0.0, 0.1, 0.25])
def test_label_margin_is_bprefs_label_smoothing(margin):
    y = as_pbrl(LABELS)
    ours = bradley_terry_loss(R1[:, 0], R2[:, 0], smoothed_labels(y, margin)).mean()
    assert ours.item() == pytest.approx(bpref_soft_loss(R1, R2, LABELS, margin).item(), rel=1e-6)


def test_the_ensemble_trains_on_the_smoothed_labels():
    learner = BTEnsemble(3, 2, BTEnsembleConfig(ensemble_size=1, hidden_sizes=(8,), label_margin=0.1), seed=0)
    data = toy_dataset(6, 4)
    side = lambda s: SegmentTensors(learner._segment_tensor(s), learner._live(s))  # noqa: E731
    index = torch.arange(6)[None]
    y = np.where(np.arange(6) == 2, 0.5, data.labels)  # one equal label
    loss, r_left, r_right = learner._batch_loss(side(data.left), side(data.right), index, torch.as_tensor(y, dtype=torch.float32)[None])
    labels = torch.as_tensor(np.where(y == 0.5, -1, 1 - y)).long()
    assert loss.item() == pytest.approx(bpref_soft_loss(r_left[0, :, None], r_right[0, :, None], labels, 0.1).item(), rel=1e-5)


def test_early_stop_accuracy_counts_half_labels_as_bpref():
    correct, counted = training_correct(R1[:, 0], R2[:, 0], as_pbrl(LABELS))
    assert int(correct) == bpref_correct(R1, R2, LABELS) and int(counted) == len(LABELS)
    correct, counted = training_correct(R1[:, 0], R2[:, 0], as_pbrl(LABELS), exclude_equal=True)
    assert int(counted) == 4 and int(correct) == 3  # rows 0, 2 right (tie → σ¹), 1 right, 5 wrong


def test_qpa_augmentation_trains_on_twenty_crops_per_pair():
    learner = BTEnsemble(3, 2, BTEnsembleConfig(ensemble_size=1, hidden_sizes=(8,), augment="qpa"), seed=0)
    data = toy_dataset(5, 20)
    side = lambda s: SegmentTensors(learner._segment_tensor(s), learner._live(s))  # noqa: E731
    index, y = torch.arange(5)[None], torch.as_tensor(data.labels, dtype=torch.float32)[None]
    rng_state = learner.crop_rng.bit_generator.state
    loss, _, _ = learner._batch_loss(side(data.left), side(data.right), index, y)
    with torch.no_grad():
        steps = [learner._member_step_rewards(side(s), index) for s in (data.left, data.right)]
    rng = np.random.default_rng()
    rng.bit_generator.state = rng_state
    left, right, labels = qpa_crops(steps[0], steps[1], y, rng)
    assert left.shape == (1, 100) and labels.shape == (1, 100)
    # QPA train_reward_iter L735–741: one CE over all 20·B crops, mean
    assert loss.item() == pytest.approx(bradley_terry_loss(left, right, labels).mean().item(), rel=1e-5)


# ----------------------------------------------------------------------------- B-Pref's teacher thresholds
class BPrefThresholds:
    """B-Pref ``reward_model.py`` ``set_teacher_thres_skip/equal`` (L152–156) as ``train_PEBBLE.py`` calls
    them: ``new_margin`` in the first round (L238–239), ``new_margin × eps`` in later ones (L275–276)."""

    def __init__(self, eps_skip: float, eps_equal: float) -> None:
        self.teacher_eps_skip, self.teacher_eps_equal = eps_skip, eps_equal

    def set_teacher_thres_skip(self, new_margin: float) -> None:
        self.teacher_thres_skip = new_margin * self.teacher_eps_skip

    def set_teacher_thres_equal(self, new_margin: float) -> None:
        self.teacher_thres_equal = new_margin * self.teacher_eps_equal

    def round(self, index: int, new_margin: float) -> None:
        if index == 0:
            self.set_teacher_thres_skip(new_margin)
            self.set_teacher_thres_equal(new_margin)
        else:
            self.set_teacher_thres_skip(new_margin * self.teacher_eps_skip)
            self.set_teacher_thres_equal(new_margin * self.teacher_eps_equal)


@pytest.mark.parametrize("eps_skip, eps_equal", [(0.1, 0.0), (0.0, 0.1), (0.3, 0.2)])
def test_bpref_code_threshold_rule_squares_eps_from_the_second_round(eps_skip, eps_equal):
    reference = BPrefThresholds(eps_skip, eps_equal)
    code = SyntheticTeacher(SyntheticTeacherConfig(eps_skip=eps_skip, eps_equal=eps_equal, threshold_rule="bpref-code"))
    paper = SyntheticTeacher(SyntheticTeacherConfig(eps_skip=eps_skip, eps_equal=eps_equal))
    for index, margin in enumerate([40.0, 55.0, 70.0]):
        reference.round(index, margin)
        code.calibrate(margin, index)
        paper.calibrate(margin, index)
        assert code.skip_threshold == pytest.approx(reference.teacher_thres_skip)
        assert code.equal_threshold == pytest.approx(reference.teacher_thres_equal)
        # the paper's rule (and B-Pref's PrefPPO, on_policy_with_reward_algorithm.py L175–178): ε × m every round
        assert (paper.skip_threshold, paper.equal_threshold) == pytest.approx((eps_skip * margin, eps_equal * margin))


# ----------------------------------------------------------------------------- PEBBLE's critic reset
def tiny_sac(**overrides) -> tuple:
    env = DummyVecEnv([lambda: gym.make("Pendulum-v1")])
    config = SACConfig(batch_size=64, learning_starts=1000, hidden_sizes=(8,), **overrides)
    model = make_sac(env, config, seed=0)
    model.learn(total_timesteps=40)  # 40 random rows, no gradient step (batch 64 > 40)
    return model, config


def critic_weights(model) -> list[torch.Tensor]:
    return [p.detach().clone() for p in model.critic.parameters()]


def test_critic_is_reset_at_the_first_reward_update_without_pretraining():
    """B-Pref train_PEBBLE.py L224–255: reset_critic at num_seed_steps + num_unsup_steps, also when num_unsup_steps = 0."""
    model, config = tiny_sac(unsupervised_pretraining=False)
    learner = BTEnsemble(3, 1, BTEnsembleConfig(hidden_sizes=(8,)), seed=0)
    hooks = SACFeedbackHooks(model, config)
    before = critic_weights(model)
    hooks.after_round(learner)
    after = critic_weights(model)
    assert not all(torch.equal(a, b) for a, b in zip(before, after))
    assert all(torch.equal(a, b) for a, b in zip(model.critic.parameters(), model.critic_target.parameters()))
    hooks.after_round(learner)  # later rounds only relabel
    assert all(torch.equal(a, b) for a, b in zip(after, critic_weights(model)))


def test_state_entropy_reward_scores_the_configured_state():
    model, _ = tiny_sac(state_entropy_on="next_obs")
    assert model.replay_buffer.intrinsic.on == "next_obs"
    model, _ = tiny_sac()
    assert model.replay_buffer.intrinsic.on == "obs"  # B-Pref agent/sac.py L170


# ----------------------------------------------------------------------------- CPL and IPL
def reference_weight_init(m: nn.Module, gain: int = 1) -> None:
    """jhejna/cpl ``research/networks/mlp.py`` ``weight_init`` L13–22 (``LinearEnsemble`` per member slice)."""
    if isinstance(m, nn.Linear):
        nn.init.orthogonal_(m.weight.data, gain=gain)
        if hasattr(m.bias, "data"):
            m.bias.data.fill_(0.0)
    if isinstance(m, BatchedLinear):
        for i in range(m.weight.shape[0]):
            nn.init.orthogonal_(m.weight.data[i], gain=gain)
        if hasattr(m.bias, "data"):
            m.bias.data.fill_(0.0)


@pytest.mark.parametrize("members", [None, 3])
def test_orthogonal_init_is_the_references_weight_init(members):
    torch.manual_seed(0)
    ours = mlp(5, 2, (16, 16), members=members, init="orthogonal")
    torch.manual_seed(0)
    reference = mlp(5, 2, (16, 16), members=members)  # the reference builds its layers, then applies weight_init
    reference.apply(reference_weight_init)
    for a, b in zip(ours.state_dict().values(), reference.state_dict().values()):
        assert torch.equal(a, b)


def test_cpl_and_ipl_default_to_orthogonal_init():
    assert CPLConfig().init == "orthogonal" and IPLConfig().init == "orthogonal"  # ortho_init: True in both references
    learner = CPL(3, 2, CPLConfig(hidden_sizes=(8,), bc_steps=0), seed=0)
    first = learner.policy.net[0]
    assert torch.all(first.bias == 0)
    assert torch.allclose(first.weight @ first.weight.T, torch.eye(8), atol=1e-5) or torch.allclose(
        first.weight.T @ first.weight, torch.eye(3), atol=1e-5)


def test_cpl_warmup_is_the_references_linear_warmup():
    """jhejna/cpl ``research/utils/schedules.py`` ``linear_warmup`` L15–19 under LambdaLR: k starts at 0."""
    warmup, lr = 4, 1e-3
    learner = CPL(3, 2, CPLConfig(hidden_sizes=(8,), bc_steps=2, warmup_steps=warmup, lr=lr, batch_size=4, steps_per_update=1), seed=0)
    data = toy_dataset(8, 3)
    seen = []
    for step in range(2 + 6):
        before = [p.detach().clone() for p in learner.policy.parameters()]
        learner.update(data)  # steps_per_update = 1
        if step == 2:  # the first CPL step runs at rate 0: nothing moves
            assert all(torch.equal(a, b) for a, b in zip(before, learner.policy.parameters()))
        seen.append(learner.optimizer.param_groups[0]["lr"])  # the rate of the next step
    reference = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=lr)
    schedule = torch.optim.lr_scheduler.LambdaLR(reference, lambda step: 1.0 * min(1.0, step / warmup))
    expected = []
    for _ in range(6):
        expected.append(reference.param_groups[0]["lr"])
        reference.step()
        schedule.step()
    assert expected[0] == 0.0
    assert seen[2:7] == pytest.approx(expected[1:6])  # after CPL step j, the rate of step j + 1


def test_ipl_defaults_are_the_metaworld_reference_config():
    """jhejna/inverse-preference-learning ``configs/metaworld/ipl_iql.yaml``."""
    reference = {"polyak": 0.005, "beta": 0.3333, "chi2": 3.0, "expectile": 0.75, "target_clipping": False,
                 "lr": 0.0003, "hidden_sizes": (256, 256, 256), "batch_size": 16, "window": 16, "discount": 0.99}
    config = IPLConfig()
    for key, value in reference.items():
        assert getattr(config, key) == pytest.approx(value, rel=1e-3), key


def is_orthogonal(weight: torch.Tensor) -> bool:
    small = min(weight.shape)
    gram = weight @ weight.T if weight.shape[0] == small else weight.T @ weight
    return torch.allclose(gram, torch.eye(small), atol=1e-5)


def test_sac_orthogonal_init_is_bprefs_weight_init_also_at_the_critic_reset():
    """B-Pref ``utils.py`` ``weight_init`` L144–149: orthogonal weights (gain 1), zero bias, actor and critic."""
    model, config = tiny_sac(orthogonal_init=True, unsupervised_pretraining=False)
    linears = lambda net: [m for m in net.modules() if isinstance(m, nn.Linear)]  # noqa: E731
    for layer in linears(model.actor) + linears(model.critic):
        assert is_orthogonal(layer.weight.detach()) and torch.all(layer.bias == 0)
    SACFeedbackHooks(model, config).after_round(BTEnsemble(3, 1, BTEnsembleConfig(hidden_sizes=(8,)), seed=0))
    for layer in linears(model.critic):  # reset_critic re-creates the critic with weight_init (agent/sac.py L89–97)
        assert is_orthogonal(layer.weight.detach()) and torch.all(layer.bias == 0)
    plain, _ = tiny_sac()
    assert not all(is_orthogonal(layer.weight.detach()) for layer in linears(plain.critic))


def bpref_members(learner: BTEnsemble) -> list[nn.Sequential]:
    """The ensemble as B-Pref's ``gen_net`` members (``reward_model.py`` L18–32: Linear, LeakyReLU, …, Linear, tanh),
    with the same weights (``BatchedLinear`` holds ``W_e`` as ``[in, out]``)."""
    layers = learner.net.net
    members = []
    for e in range(learner.config.ensemble_size):
        modules: list[nn.Module] = []
        for layer in layers:
            if isinstance(layer, BatchedLinear):
                linear = nn.Linear(*layer.weight.shape[1:])
                linear.weight.data.copy_(layer.weight.data[e].T)
                linear.bias.data.copy_(layer.bias.data[e, 0])
                modules.append(linear)
            else:
                modules.append(type(layer)())
        members.append(nn.Sequential(*modules))
    return members


def test_one_reward_update_is_bprefs_train_reward_step():
    """B-Pref ``reward_model.py`` ``train_reward`` L622–652: per member ``CrossEntropyLoss`` on
    ``[R̂¹, R̂²]`` against the label (1 = σ² preferred), summed over members, one Adam step (lr 3e-4)."""
    config = BTEnsembleConfig(ensemble_size=2, hidden_sizes=(8, 8), batch_size=128, max_epochs=1, lr=3e-4)
    learner = BTEnsemble(3, 2, config, seed=0)
    data = toy_dataset(12, 4)
    members = bpref_members(learner)
    optimizer = torch.optim.Adam([p for m in members for p in m.parameters()], lr=3e-4)
    sa = lambda s: torch.as_tensor(np.concatenate([s.obs, s.actions], axis=-1), dtype=torch.float32)  # noqa: E731
    sa_t_1, sa_t_2 = sa(data.left), sa(data.right)
    labels = torch.as_tensor(1 - data.labels).long()  # B-Pref: 1 * (sum_r_t_1 < sum_r_t_2)
    loss = 0.0
    for member in members:  # all 12 labels fit one minibatch, so the per-member order does not matter
        r_hat = torch.cat([member(sa_t_1).sum(axis=1), member(sa_t_2).sum(axis=1)], axis=-1)
        loss = loss + nn.CrossEntropyLoss()(r_hat, labels)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    learner.update(data)
    for ours, theirs in zip(bpref_members(learner), members):
        for a, b in zip(ours.parameters(), theirs.parameters()):
            assert torch.allclose(a, b, atol=1e-6)


def test_opt_in_precisions_reach_the_networks():
    learner = BTEnsemble(3, 2, BTEnsembleConfig(hidden_sizes=(8,), train_precision="bfloat16"), seed=0)
    assert learner.net.train_autocast == "bfloat16"
    assert BTEnsemble(3, 2, BTEnsembleConfig(hidden_sizes=(8,)), seed=0).net.train_autocast is None
    env = DummyVecEnv([lambda: gym.make("Pendulum-v1")])
    with pytest.raises(ValueError, match="agent.impl=fast"):
        make_sac(env, SACConfig(hidden_sizes=(8,), precision="bfloat16"), seed=0)
    from pbrl.agents.fast_sac import make_fast_sac

    assert make_fast_sac(env, SACConfig(hidden_sizes=(8,), precision="bfloat16"), seed=0).precision == "bfloat16"


def test_cpl_rank_mode_pairs_as_the_reference():
    """jhejna/cpl ``research/datasets/feedback_buffer.py`` L96, L128–130: the second segment uniformly at random,
    ``label = 1·(score_1 < score_2) + ½·(score_1 == score_2)`` (1 = the second preferred)."""
    from pbrl.learners.cpl import rank_pairs

    data = toy_dataset(10, 3)
    scores = np.array([3.0, 1.0, 1.0, 2.0, 0.0, 5.0, 1.0, 2.0, 4.0, 0.5])
    pairs = rank_pairs(data.left, scores, 64, np.random.default_rng(7))
    rng = np.random.default_rng(7)
    first, second = rng.integers(0, 10, size=64), rng.integers(0, 10, size=64)
    label = 1.0 * (scores[first] < scores[second]) + 0.5 * (scores[first] == scores[second])
    np.testing.assert_array_equal(pairs.labels, 1.0 - label)  # pbrl's y = P[first ≻ second]
    np.testing.assert_array_equal(pairs.left.obs, data.left.obs[first])
    np.testing.assert_array_equal(pairs.right.obs, data.left.obs[second])


def test_cpl_rank_mode_runs_offline_on_the_datasets_true_returns(tmp_path):
    from pbrl import Runner
    from pbrl.experiments.collect import CollectConfig, CollectTeacherConfig, collect
    from pbrl.experiments.config import parse_config

    out = collect(CollectConfig(env="metaworld:reach-v3", expert="scripted", episodes_per_policy=1, max_episode_steps=40,
                                segment_length=10, segments=40, pairs=60, out=str(tmp_path / "reach.h5"),
                                teacher=CollectTeacherConfig(type="regret")), log=lambda _: None)
    config = parse_config({
        "env": "metaworld:reach-v3", "steps": 20, "max_episode_steps": 40, "eval_interval": 20, "eval_episodes": 1,
        "run_dir": str(tmp_path / "run"), "reward_free": {"dataset": str(out), "holdout": 0.2},
        "learner": {"type": "cpl", "pairing": "rank", "hidden_sizes": [16], "batch_size": 8, "steps_per_update": 10,
                    "bc_steps": 10, "warmup_steps": 5},
    })
    runner = Runner(config, tmp_path / "run")
    runner.train()
    segments, scores = runner.learner.ranked
    assert len(scores) < 40 and len(segments.obs) == len(scores)  # the held-out pairs' segments left out
    with pytest.raises(ValueError, match="pairing=rank"):
        CPL(3, 2, CPLConfig(hidden_sizes=(8,), pairing="rank", bc_steps=0, steps_per_update=1), seed=0).update(toy_dataset(4, 3))
