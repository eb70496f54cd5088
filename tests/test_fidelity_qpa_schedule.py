"""QPA's reward-learning schedule (``learner.schedule = "iterations"``) restated from huxiao09/QPA
@ 7e9e49e and compared with pbrl's :class:`BTEnsemble` (docs/fidelity.md, "QPA").

``train_QPA.py`` L143–144 (its DMC branch) runs ``num_iters = int(np.ceil(reward_update *
labeled_feedback / train_batch_size))`` iterations of ``reward_model.py`` ``train_reward_iter``
(L697–766): per iteration one Adam step (``self.opt``, L184) on the next ≤ 128 labels of each
member's permutation (``shuffle_dataset``, L674–678), with ``data_aug_ratio`` crops
(``get_cropping_mask``, L680–695); every permutation is redrawn once a minibatch reaches the end
(L756–759), and the loop stops once the running accuracy over all its iterations, crops counted,
is ``≥ 0.98`` (L761). The restatement below keeps QPA's code, with its two random sources swapped
for the ones pbrl draws in the same order: ``np.random.permutation`` → ``torch.randperm`` of a
generator seeded like the learner's, ``np.random.randint`` → a seeded ``np.random.Generator``'s
``integers`` (randint's half-open bounds), as in ``tests/test_augment.py``.
"""

from __future__ import annotations

import copy
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import yaml

from pbrl.experiments.config import parse_config
from pbrl.experiments.reproduce.catalogue import expand, load_catalogue
from pbrl.experiments.reproduce.translate import translate
from pbrl.learners import BTEnsemble, BTEnsembleConfig
from pbrl.nets import BatchedLinear
from pbrl.segments import PreferenceDataset, Segments
from tests.test_augment import qpa_get_cropping_mask
from tests.test_cpl import toy_dataset


class QPARewardModel:
    """The parts of QPA's ``RewardModel`` that ``train_reward_iter`` touches."""

    def __init__(self, ensemble: list[nn.Module], lr: float, seg1: np.ndarray, seg2: np.ndarray, labels: np.ndarray,
                 train_batch_size: int, data_aug_ratio: int, permutation_generator: torch.Generator, randint) -> None:
        self.ensemble, self.de = ensemble, len(ensemble)
        self.paramlst = [p for member in ensemble for p in member.parameters()]
        self.opt = torch.optim.Adam(self.paramlst, lr=lr)  # L184
        self.buffer_seg1, self.buffer_seg2, self.buffer_label = seg1, seg2, labels  # labels [N, 1]: 1 = σ² preferred
        self.buffer_index, self.buffer_full, self.capacity = len(labels), False, len(labels)
        self.train_batch_size, self.data_aug_ratio = train_batch_size, data_aug_ratio
        self.CEloss = nn.CrossEntropyLoss()
        self.permutation = lambda n: torch.randperm(n, generator=permutation_generator).numpy()  # np.random.permutation
        self.randint = randint
        self.iterations_run = 0

    def r_hat_member(self, x: np.ndarray, member: int) -> torch.Tensor:
        return self.ensemble[member](torch.from_numpy(x).float())

    def shuffle_dataset(self, max_len):  # L674–678
        total_batch_index = []
        for _ in range(self.de):
            total_batch_index.append(self.permutation(max_len))
        return total_batch_index

    def train_reward_iter(self, num_iters):  # L697–766
        ensemble_losses = [[] for _ in range(self.de)]
        ensemble_acc = np.array([0 for _ in range(self.de)])
        max_len = self.capacity if self.buffer_full else self.buffer_index
        total_batch_index = self.shuffle_dataset(max_len)
        total = 0
        start_index = 0
        for epoch in range(num_iters):
            self.iterations_run = epoch + 1
            self.opt.zero_grad()
            loss = 0.0
            last_index = start_index + self.train_batch_size
            if last_index > max_len:
                last_index = max_len
            for member in range(self.de):
                idxs = total_batch_index[member][start_index:last_index]
                sa_t_1 = self.buffer_seg1[idxs]
                sa_t_2 = self.buffer_seg2[idxs]
                labels = self.buffer_label[idxs]
                labels = torch.from_numpy(labels.flatten()).long()
                if self.data_aug_ratio:
                    labels = labels.repeat(self.data_aug_ratio)
                if member == 0:
                    total += labels.size(0)
                r_hat1 = self.r_hat_member(sa_t_1, member=member)
                r_hat2 = self.r_hat_member(sa_t_2, member=member)
                if self.data_aug_ratio:
                    mask_1, mask_2 = qpa_get_cropping_mask(r_hat1, self.data_aug_ratio, self.randint)
                    r_hat1 = r_hat1.repeat(self.data_aug_ratio, 1, 1)
                    r_hat2 = r_hat2.repeat(self.data_aug_ratio, 1, 1)
                    r_hat1 = (mask_1 * r_hat1).sum(axis=1)
                    r_hat2 = (mask_2 * r_hat2).sum(axis=1)
                else:
                    r_hat1 = r_hat1.sum(axis=1)
                    r_hat2 = r_hat2.sum(axis=1)
                r_hat = torch.cat([r_hat1, r_hat2], axis=-1)
                curr_loss = self.CEloss(r_hat, labels)
                loss += curr_loss
                ensemble_losses[member].append(curr_loss.item())
                _, predicted = torch.max(r_hat.data, 1)
                correct = (predicted == labels).sum().item()
                ensemble_acc[member] += correct
            loss.backward()
            self.opt.step()
            start_index += self.train_batch_size
            if last_index == max_len:
                total_batch_index = self.shuffle_dataset(max_len)
                start_index = 0
            if np.mean(ensemble_acc / total) >= 0.98:
                break
        ensemble_acc = ensemble_acc / total
        return ensemble_acc, np.mean(ensemble_losses)


def qpa_num_iters(reward_update: int, labeled_feedback: int, train_batch_size: int) -> int:
    """``train_QPA.py`` L143."""
    return int(np.ceil(reward_update * labeled_feedback / train_batch_size))


def members_of(learner: BTEnsemble) -> list[nn.Module]:
    """Each member of pbrl's batched ensemble as its own ``nn.Sequential`` of ``nn.Linear`` (a copy, same weights)."""
    members = []
    for e in range(learner.config.ensemble_size):
        layers = []
        for layer in learner.net.net:
            if isinstance(layer, BatchedLinear):
                linear = nn.Linear(*layer.weight.shape[1:])
                with torch.no_grad():
                    linear.weight.copy_(layer.weight[e].T)
                    linear.bias.copy_(layer.bias[e, 0])
                layers.append(linear)
            else:
                layers.append(copy.deepcopy(layer))
        members.append(nn.Sequential(*layers))
    return members


def member_parameters(learner: BTEnsemble, e: int) -> list[torch.Tensor]:
    """Member ``e``'s parameters in ``nn.Linear``'s layout, to compare with the restatement's."""
    out = []
    for layer in learner.net.net:
        if isinstance(layer, BatchedLinear):
            out += [layer.weight[e].T, layer.bias[e, 0]]
    return out


def qpa_restatement(learner: BTEnsemble, data: PreferenceDataset, seed: int) -> QPARewardModel:
    """QPA's reward model holding a copy of ``learner``'s members and ``data`` (QPA's label 1 = σ² preferred)."""
    cfg = learner.config
    inputs = lambda s: np.concatenate([s.obs, s.actions], axis=-1).astype(np.float32)  # noqa: E731
    labels = (1 - data.labels).astype(np.int64).reshape(-1, 1)
    return QPARewardModel(members_of(learner), cfg.lr, inputs(data.left), inputs(data.right), labels, cfg.batch_size,
                          20 if cfg.augment == "qpa" else 0, torch.Generator().manual_seed(seed), np.random.default_rng(seed).integers)


def config(**overrides) -> BTEnsembleConfig:
    base = dict(hidden_sizes=(8, 8), lr=3e-3, batch_size=4, schedule="iterations", iterations_per_label=3)
    return BTEnsembleConfig(**{**base, **overrides})


@pytest.mark.parametrize("members, augment, pairs", [(1, "qpa", 10), (3, "none", 10), (1, "none", 8)])
def test_iteration_schedule_matches_qpas_train_reward_iter(members, augment, pairs):
    """Two rounds (the second with more labels): same parameters as QPA's code after each, to 1e-6.
    10 pairs in minibatches of 4 end on a short one (4, 4, 2); 8 pairs do not. Crops with one member
    only: QPA draws a member's crops itself, pbrl one set for all (pbrl.augment.qpa_crops)."""
    seed = 3
    learner = BTEnsemble(3, 2, config(ensemble_size=members, augment=augment), seed=seed)
    data = toy_dataset(pairs + 4, 20, seed=1)
    data = PreferenceDataset(data.left, data.right, (np.arange(pairs + 4) % 3 == 0).astype(np.float32))  # labels no net fits at once: no early stop
    reference = qpa_restatement(learner, data, seed)
    for n in (pairs, pairs + 4):
        metrics = learner.update(data[:n])
        reference.buffer_index = reference.capacity = n  # QPA's buffer after the round's labels
        acc, _ = reference.train_reward_iter(qpa_num_iters(learner.config.iterations_per_label, n, learner.config.batch_size))
        assert metrics["iterations"] == reference.iterations_run == qpa_num_iters(3, n, 4)
        assert metrics["train_accuracy"] == pytest.approx(float(np.mean(acc)), abs=1e-12)
        for e in range(members):
            for ours, theirs in zip(member_parameters(learner, e), reference.ensemble[e].parameters()):
                torch.testing.assert_close(ours, theirs, atol=1e-6, rtol=0)


def contradictory(pairs: int) -> PreferenceDataset:
    """Every pair twice, with opposite labels: no net gets more than half of them right."""
    data = toy_dataset(pairs, 10, seed=2)
    twice = lambda s: Segments.concatenate([s, s])  # noqa: E731
    return PreferenceDataset(twice(data.left), twice(data.right), np.concatenate([data.labels, 1.0 - data.labels]))


@pytest.mark.parametrize("labels, batch_size, per_label", [(6, 4, 3), (16, 16, 2), (10, 128, 2000), (130, 128, 1)])
def test_a_round_runs_ceil_iterations_per_label_times_labels_over_batch_size(labels, batch_size, per_label):
    learner = BTEnsemble(3, 2, config(hidden_sizes=(4,), batch_size=batch_size, iterations_per_label=per_label, iterations_stop_accuracy=1.0), seed=0)
    data = contradictory(labels // 2)
    metrics = learner.update(data)
    expected = qpa_num_iters(per_label, labels, batch_size)
    assert metrics["iterations"] == expected == math.ceil(per_label * labels / batch_size)
    assert all(state["step"] == expected for state in learner.optimizer.state.values())  # Adam steps taken
    assert metrics["train_accuracy"] <= 0.5 + 1e-9


def agreeing(learner: BTEnsemble, pairs: int, wrong: list[int]) -> PreferenceDataset:
    """Labels that the learner's initial net gets right on every pair but those in ``wrong``."""
    data = toy_dataset(pairs, 10, seed=4)
    r_left, r_right = (learner.member_segment_returns(s)[0].numpy() for s in (data.left, data.right))
    labels = (r_left >= r_right).astype(np.float32)
    labels[wrong] = 1.0 - labels[wrong]
    return PreferenceDataset(data.left, data.right, labels)


def test_the_round_stops_once_the_running_accuracy_reaches_98_percent():
    """A net too slow to change (lr 1e-6) on labels it gets right but one: the running accuracy is
    (10k − 1) / 10k after k minibatches of 10 once the wrong pair has been seen."""
    fixed = dict(ensemble_size=1, hidden_sizes=(8,), lr=1e-6, batch_size=10, iterations_per_label=50)
    learner = BTEnsemble(3, 2, config(**fixed), seed=0)
    metrics = learner.update(agreeing(learner, 60, wrong=[]))  # right from the first step: 1.0 ≥ 0.98
    assert metrics["iterations"] == 1 and metrics["train_accuracy"] == 1.0
    learner = BTEnsemble(3, 2, config(**fixed, iterations_stop_accuracy=1.0), seed=0)
    assert learner.update(agreeing(learner, 60, wrong=[]))["iterations"] == 1  # ≥, not >
    # the wrong pair in the first minibatch: 9/10, 19/20, 29/30, 39/40, then 49/50 = 0.98 stops QPA's loop (≥) and pbrl's
    learner = BTEnsemble(3, 2, config(**fixed), seed=0)
    peek = torch.Generator()
    peek.set_state(learner.generator.get_state())
    data = agreeing(learner, 60, wrong=[int(torch.randperm(60, generator=peek)[0])])
    reference = qpa_restatement(learner, data, seed=0)
    metrics = learner.update(data)
    acc, _ = reference.train_reward_iter(qpa_num_iters(50, 60, 10))
    assert metrics["iterations"] == reference.iterations_run == 5
    assert metrics["train_accuracy"] == float(np.mean(acc)) == 0.98
    learner = BTEnsemble(3, 2, config(**fixed, iterations_stop_accuracy=0.99), seed=0)
    assert learner.update(data)["iterations"] == qpa_num_iters(50, 60, 10) == 300  # the wrong pair is back every 6 steps: ≤ 59/60 < 0.99


def test_the_epochs_schedule_is_the_default_and_the_keys_are_checked():
    assert BTEnsembleConfig().schedule == "epochs"
    for bad, key in [({"schedule": "iters"}, "learner.schedule"), ({"iterations_per_label": 0}, "learner.iterations_per_label"),
                     ({"iterations_stop_accuracy": 0.0}, "learner.iterations_stop_accuracy"),
                     ({"iterations_stop_accuracy": float("nan")}, "learner.iterations_stop_accuracy")]:
        with pytest.raises(ValueError, match=key.replace(".", r"\.")) as error:
            BTEnsembleConfig(**bad)
        assert "\n" not in str(error.value)


def test_qpa_presets_and_translations_take_the_dmc_schedule_and_keep_epochs_on_metaworld():
    """train_QPA.py L136–146: train_reward_iter on DMC (crops, iterations), train_reward on MetaWorld (epochs, no crops)."""
    configs = Path(__file__).resolve().parents[1] / "experiments" / "configs"
    walker = parse_config(yaml.safe_load((configs / "qpa_walker_walk.yaml").read_text())).learner
    assert (walker.schedule, walker.iterations_per_label, walker.iterations_stop_accuracy, walker.augment) == ("iterations", 2000, 0.98, "qpa")
    door = parse_config(yaml.safe_load((configs / "qpa_door_open.yaml").read_text())).learner
    assert (door.schedule, door.max_epochs, door.stop_accuracy, door.augment) == ("epochs", 200, 0.97, "none")
    catalogue = load_catalogue()
    out, deviations = translate(expand(catalogue["qpa-walker-walk"], seeds=1)[0])
    assert (out["learner.schedule"], out["learner.iterations_per_label"], out["learner.augment"]) == ("iterations", 2000, "qpa")
    assert "learner.max_epochs" not in out and "reward_update" not in deviations
    out, _ = translate(expand(catalogue["qpa-door-open"], seeds=1)[0])
    assert out["learner.max_epochs"] == 200 and "learner.schedule" not in out and "learner.augment" not in out
