"""Reference keys → pbrl config keys: :data:`REFERENCE_KEYS` (the table in this folder's
README) and :func:`translate`, which turns a :class:`RunSpec`'s reference settings into a
pbrl config (the type-tagged sections of ``experiments/config.py``: ``method`` expanding into
``learner.type`` + ``agent.type``, then ``learner.*``, ``agent.*``, ``teacher.*``,
``feedback.*``, ``query.*``) plus the settings pbrl cannot express — the deviations a
report prints next to its numbers."""

from __future__ import annotations

import math
from typing import Any

from pbrl.augment import QPA_CROPS
from pbrl.experiments.reproduce.catalogue import RunSpec

# Reference key → pbrl dotted key (type-tagged config), and how. None: no pbrl key; the value
# is a deviation when it differs from what pbrl does (the note says what that is).
REFERENCE_KEYS: dict[str, tuple[str | None, str]] = {
    # rll-research/BPref train_PEBBLE.py / config/train_PEBBLE.yaml (QPA, RUNE and ml-reed share them)
    "num_train_steps": ("steps", "same"),
    "replay_buffer_capacity": ("agent.buffer_size", "same"),
    "num_seed_steps": ("agent.learning_starts", "same; also first query = num_seed_steps + num_unsup_steps"),
    "num_unsup_steps": ("feedback.first_query_step", "first_query_step = num_seed_steps + num_unsup_steps"),
    "num_interact": ("feedback.interval", "same"),
    "max_feedback": ("feedback.budget", "same"),
    "reward_batch": ("feedback.per_round", "same"),
    "segment": ("feedback.segment_length", "same"),
    "reward_lr": ("learner.lr", "same"),
    "reward_update": ("learner.max_epochs", "same (pbrl may stop a round early at learner.stop_accuracy); QPA's DMC runs: learner.schedule=iterations, learner.iterations_per_label"),
    "ensemble_size": ("learner.ensemble_size", "same"),
    "large_batch": ("query.pool_multiplier", "same"),
    "preference_dataset_large_update_size": ("query.pool_multiplier", "ml-reed's name for large_batch"),
    "feed_type": ("query.strategy", "0 uniform, 1 disagreement, 2 entropy, 3 kcenter, 4 kcenter-disagreement, 5 kcenter-entropy"),
    "teacher_beta": ("teacher.beta", "−1 (perfectly rational) → inf"),
    "teacher_gamma": ("teacher.gamma", "same"),
    "teacher_eps_mistake": ("teacher.eps_mistake", "same"),
    "teacher_eps_skip": ("teacher.eps_skip", "same"),
    "teacher_eps_equal": ("teacher.eps_equal", "same"),
    "topK": ("agent.state_entropy_k", "same"),
    "reset_update": ("agent.reset_update", "same"),
    "gradient_update": ("agent.gradient_steps", "same"),
    "eval_frequency": ("eval_interval", "same"),
    "num_eval_episodes": ("eval_episodes", "same"),
    "activation": (None, "pbrl's reward members always end in tanh (B-Pref activation=tanh)"),
    "label_margin": ("learner.label_margin", "same (B-Pref label smoothing)"),
    "reward_schedule": (None, "pbrl: a constant reward_batch per round (B-Pref reward_schedule=0)"),
    "agent.params.actor_lr": ("agent.learning_rate", "pbrl has one learning rate for actor, critic and α"),
    "agent.params.critic_lr": ("agent.learning_rate", "must equal actor_lr (one learning rate in pbrl)"),
    "agent.params.alpha_lr": ("agent.alpha_lr", "same (agent.impl=fast: FastSAC's own α optimiser); runs left on SB3's SAC (learner=regret's greedy actor) learn α at agent.learning_rate, a deviation where they differ"),
    "agent.params.batch_size": ("agent.batch_size", "same"),
    "agent.params.init_temperature": ("agent.init_temperature", "same"),
    "agent.params.discount": ("agent.gamma", "same"),
    "agent.params.critic_tau": ("agent.tau", "same"),
    "agent.params.critic_target_update_frequency": ("agent.target_update_interval", "same, counted over the run (agent.impl=fast: agent.target_update_clock=global); on SB3's SAC (learner=regret) a deviation unless 1: SB3 counts within each train() call"),
    "agent.params.actor_update_frequency": (None, "SB3 SAC updates the actor every gradient step (1)"),
    "double_q_critic.params.hidden_dim": ("agent.hidden_sizes", "hidden_sizes = [hidden_dim] × hidden_depth"),
    "double_q_critic.params.hidden_depth": ("agent.hidden_sizes", "hidden_sizes = [hidden_dim] × hidden_depth"),
    "diag_gaussian_actor.params.hidden_dim": ("agent.hidden_sizes", "pbrl: actor and critic share hidden_sizes"),
    "diag_gaussian_actor.params.hidden_depth": ("agent.hidden_sizes", "pbrl: actor and critic share hidden_sizes"),
    "diag_gaussian_actor.params.log_std_bounds": ("agent.log_std_bounds", "same (agent.impl=fast: B-Pref's tanh squashing of log σ); on SB3's SAC (learner=regret) a deviation: SB3 clamps log σ to [−20, 2]"),
    # huxiao09/QPA train_QPA.py
    "max_reward_buffer_size": ("query.qpa_episodes", "same (episodes in the policy-aligned buffer)"),
    "her_ratio": ("agent.recent_fraction", "share of each SAC batch from the recent transitions"),
    "data_aug_ratio": ("learner.augment", "20 → 'qpa' (QPA's 20 temporal crops per pair); other ratios are a deviation"),
    "explore": (None, "QPA explore=false: plain uniform draws from the policy-aligned buffer (pbrl's qpa)"),
    # apple/ml-reed train_REED.yaml / train_PEBBLE.yaml / run_preference_experiment.py
    "segment_size": ("feedback.segment_length", "same"),
    "reward_train_batch": ("learner.batch_size", "ml-reed: also the queries per round (= max_feedback / 10 on DMC)"),
    "preference_dataset_update_size": ("feedback.per_round", "same"),
    "preference_dataset_capacity": (None, "pbrl keeps every label (ml-reed: capacity = max_feedback)"),
    "reward_hidden_embed_dim": ("learner.hidden_sizes", "hidden_sizes = [dim] × reward_num_hidden_layers"),
    "reward_num_hidden_layers": ("learner.hidden_sizes", "hidden_sizes = [dim] × layers"),
    "reward_state_embed_dim": ("learner.state_embed", "same"),
    "reward_action_embed_dim": ("learner.action_embed", "same"),
    "self_future_consistency_lr": ("learner.sfc_lr", "same"),
    "self_future_consistency_optimizer": ("learner.sfc_optimizer", "same"),
    "self_future_consistency_epochs": ("learner.sfc_epochs", "same"),
    "self_future_consistency_batch": ("learner.sfc_batch", "same"),
    "self_future_consistency_comparison_hidden_size": ("learner.comparison_dim", "same"),
    "self_future_consistency_projection_size": (None, "pbrl projects to reed.comparison_dim (no separate projection size)"),
    "sfc_train_interval": ("learner.sfc_interval", "same"),
    "freeze_pretrained_parameters": ("learner.freeze", "same"),
    "training_split_size": ("learner.sfc_holdout", "sfc_holdout = 1 − training_split_size"),
    "contrastive_sfc": (None, "pbrl's REED is the SimSiam (distillation) variant: contrastive_sfc=false only"),
    "self_future_consistency_pretrain": (None, "pbrl alternates SFC then preference epochs (ml-reed default true)"),
    "joint_learning": (None, "pbrl: no joint SFC+preference epochs (ml-reed default false)"),
    "action_repeat": (None, "pbrl repeats no actions (ml-reed: 1 on DMC, 5 on MetaWorld)"),
    # jhejna/cpl and jhejna/inverse-preference-learning (research-lightning configs, flattened)
    "alg_kwargs.alpha": ("learner.alpha", "same"),
    "alg_kwargs.contrastive_bias": ("learner.bias", "same"),
    "alg_kwargs.bc_coeff": ("learner.bc_coeff", "same"),
    "alg_kwargs.bc_data": ("learner.bc_data", "all → all; pos (SFT) → preferred"),
    "alg_kwargs.bc_steps": ("learner.bc_steps", "same"),
    "alg_kwargs.bc_all_steps": (None, "SFT clones all segments for N steps, then the preferred ones; pbrl's bc clones learner.bc_data throughout"),
    "alg_kwargs.beta": ("learner.beta", "same"),
    "alg_kwargs.expectile": ("learner.expectile", "same"),
    "alg_kwargs.tau": ("learner.polyak", "the reference's tau = pbrl's learner.polyak (not the expectile τ)"),
    "alg_kwargs.chi2_coeff": ("learner.chi2", "same: λ_χ² · E[r_Q²] and the clip 1 / (λ_χ² (1 − γ)) (research/algs/ipl_iql.py lines 341-367)"),
    "alg_kwargs.chi2_replay_weight": ("learner.replay_weight", "same"),
    "alg_kwargs.policy_replay_weight": ("learner.replay_weight", "pbrl: one replay weight for χ², value and policy"),
    "alg_kwargs.value_replay_weight": ("learner.replay_weight", "pbrl: one replay weight for χ², value and policy"),
    "alg_kwargs.target_clipping": ("learner.target_clipping", "same"),
    "alg_kwargs.reward_steps": (None, "P-IQL: gradient steps of the reward model before IQL (pbrl fits it per update)"),
    "optim_kwargs.lr": ("learner.lr", "same"),
    "network_kwargs.actor_kwargs.dropout": ("learner.dropout", "cpl and bc only (ipl/piql: a deviation)"),
    "network_kwargs.actor_kwargs.hidden_layers": ("learner.hidden_sizes", "same"),
    "network_kwargs.hidden_layers": ("learner.hidden_sizes", "same"),
    "dataset_kwargs.batch_size": ("learner.batch_size", "same"),
    "dataset_kwargs.feedback_kwargs.batch_size": ("learner.batch_size", "same"),
    "dataset_kwargs.replay_kwargs.batch_size": ("learner.replay_batch_size", "same"),
    "dataset_kwargs.segment_length": (None, "segment length of the dataset (pbrl collect's segment length); null = 64"),
    "dataset_kwargs.feedback_kwargs.segment_size": (None, "segment length of the dataset (pbrl collect)"),
    "dataset_kwargs.feedback_kwargs.subsample_size": ("learner.window", "random window of this many steps"),
    "dataset_kwargs.capacity": (None, "labeled segments/comparisons used from the dataset (pbrl collect's pair count)"),
    "dataset_kwargs.feedback_kwargs.capacity": (None, "comparisons used from the dataset (pbrl collect's pair count)"),
    "dataset_kwargs.discount": ("learner.discount", "same"),
    "dataset_kwargs.mode": (None, "rank (dense: segments ranked by return) / comparison (sparse pairs)"),
    "dataset_kwargs.label_key": (None, "which return labels the dataset (rl_sum: partial return of the dense reward)"),
    "schedule_kwargs.actor.total_steps": ("learner.warmup_steps", "linear warm-up of the CPL optimiser"),
    "schedule_kwargs.actor.T_max": (None, "cosine learning-rate decay (P-IQL): pbrl keeps the rate constant"),
    "trainer_kwargs.total_steps": ("steps", "gradient steps (offline)"),
    "eval_env": (None, "the reference's env id (mw_<task>-v2); pbrl's env holds the v3 id"),
    "dataset_kwargs.path": (None, "the reference's released dataset; pbrl makes its own (pbrl collect → reward_free.dataset)"),
    "dataset_kwargs.feedback_kwargs.path": (None, "the reference's released dataset; pbrl makes its own (pbrl collect)"),
    "trainer_kwargs.eval_freq": ("eval_interval", "gradient steps between evaluations"),
    "trainer_kwargs.eval_kwargs.num_ep": ("eval_episodes", "same"),
}

# Settings pbrl has no key for but whose value is what pbrl does: not deviations at that value.
PBRL_VALUES: dict[str, Any] = {
    "activation": "tanh", "reward_schedule": 0, "explore": False, "contrastive_sfc": False,
    "joint_learning": False, "action_repeat": 1, "agent.params.actor_update_frequency": 1,
}
_FEED_TYPES = ("uniform", "disagreement", "entropy", "kcenter", "kcenter-disagreement", "kcenter-entropy")
# The catalogue's learner names → pbrl's learner.type (the regret learner is pbrl's 'advantage').
_LEARNER_TYPES = {"bt": "bt", "reed": "reed", "hprior": "hprior", "regret": "advantage"}
# Sections a run without labels (the SAC baseline, offline learners) or without an agent does not have.
_LABEL_SECTIONS = ("teacher.", "feedback.", "query.")
# B-Pref's SAC settings only FastSAC (agent.impl=fast) expresses, and what SB3's SAC does instead.
_FAST_SAC_KEYS = {
    "agent.params.alpha_lr": "SB3's SAC (this run's agent.impl=sb3) learns α at agent.learning_rate",
    "diag_gaussian_actor.params.log_std_bounds": "SB3's SAC (this run's agent.impl=sb3) clamps log σ to [−20, 2]",
    "agent.params.critic_target_update_frequency": "SB3's SAC (this run's agent.impl=sb3) counts it within each train() call: "
                                                   "with one gradient step per env step the target is updated at every step",
}


def translate(spec: RunSpec) -> tuple[dict[str, Any], dict[str, str]]:
    """``(overrides, deviations)``: pbrl dotted keys set from the spec's reference settings (the
    keys of the sections the run uses: no learner, teacher, feedback or query for the SAC
    baseline, no agent for a reward-free learner), and every reference setting pbrl cannot
    express, with what pbrl does instead. :func:`nested` turns the overrides into a config
    mapping for :func:`pbrl.experiments.config.parse_config`. Raises KeyError for a reference
    key missing from :data:`REFERENCE_KEYS`."""
    s = spec.settings
    out: dict[str, Any] = {"env": spec.env, "method": spec.method, "seed": spec.seed, "steps": spec.steps}
    if spec.learner and spec.learner != "bt":
        out["learner.type"] = _LEARNER_TYPES[spec.learner]
    if spec.teacher_type == "regret":
        out["teacher.type"] = "regret"
    if spec.query and "feed_type" not in s:
        out["query.strategy"] = spec.query
    deviations: dict[str, str] = {}
    fast = _fast_sac(spec)
    if spec.method in ("pebble", "sac"):
        out["agent.impl"] = "fast" if fast else "sb3"
    if spec.method == "pebble":  # B-Pref's TorchRunningMeanStd as written (utils.py L240) normalised the published runs' r_int
        out["agent.state_entropy_std"] = "bpref-code"
    for key, value in s.items():
        target, note = REFERENCE_KEYS[key]
        if target is None:
            deviations[key] = f"{value!r}: {note}"
            continue
        if key == "agent.params.critic_target_update_frequency":
            out[target] = int(value)
            if fast:  # B-Pref's step % frequency over the run (agent/sac.py L273–275)
                out["agent.target_update_clock"] = "global"
            elif int(value) != 1:
                deviations[key] = f"{value!r}: {_FAST_SAC_KEYS[key]}"
        elif key in _FAST_SAC_KEYS:
            if fast:
                out[target] = float(value) if key == "agent.params.alpha_lr" else list(value)
            elif key != "agent.params.alpha_lr" or float(value) != float(s.get("agent.params.actor_lr", math.nan)):
                deviations[key] = f"{value!r}: {_FAST_SAC_KEYS[key]}"
        elif key == "network_kwargs.actor_kwargs.dropout" and spec.method in ("ipl", "piql"):
            deviations[key] = f"{value!r}: pbrl's {spec.method} actor has no dropout (cpl and bc only)"
        elif key == "teacher_beta":
            out[target] = math.inf if float(value) < 0 else float(value)
        elif key == "feed_type":
            out[target] = _FEED_TYPES[int(value)]
        elif key == "reward_update" and _qpa_dmc(spec):  # train_reward_iter: ceil(reward_update · labels / 128) minibatches
            out["learner.schedule"] = "iterations"
            out["learner.iterations_per_label"] = int(value)
        elif key == "data_aug_ratio":  # QPA crops only in train_reward_iter, its DMC branch (train_QPA.py L136–146)
            if not _qpa_dmc(spec):
                continue
            if int(value) == QPA_CROPS:
                out[target] = "qpa"
            elif int(value) != 0:
                deviations[key] = f"{value!r}: pbrl's learner.augment=qpa draws {QPA_CROPS} crops per pair"
        elif key in ("num_unsup_steps", "num_seed_steps"):
            out["agent.learning_starts"] = int(s.get("num_seed_steps", 1000))
            out["feedback.first_query_step"] = int(s.get("num_seed_steps", 1000)) + int(s.get("num_unsup_steps", 0))
        elif target == "agent.hidden_sizes":
            prefix = key.rsplit(".", 1)[0]
            out[target] = [int(s[f"{prefix}.hidden_dim"])] * int(s[f"{prefix}.hidden_depth"])
        elif target == "learner.hidden_sizes" and key.startswith("reward_"):
            out[target] = [int(s["reward_hidden_embed_dim"])] * int(s.get("reward_num_hidden_layers", 3))
        elif key == "training_split_size":
            out[target] = round(1.0 - float(value), 6)
        elif key == "alg_kwargs.bc_data":
            out[target] = {"pos": "preferred"}.get(value, value)
        elif target in ("steps", "eval_interval", "feedback.interval", "agent.buffer_size"):
            out[target] = int(float(value))
        else:
            out[target] = value
    a, b = "double_q_critic", "diag_gaussian_actor"
    if all(f"{p}.params.hidden_dim" in s for p in (a, b)) and (
            s[f"{a}.params.hidden_dim"], s.get(f"{a}.params.hidden_depth")) != (s[f"{b}.params.hidden_dim"], s.get(f"{b}.params.hidden_depth")):
        deviations["diag_gaussian_actor.params.hidden_dim"] = "actor and critic sizes differ; pbrl uses the critic's for both"
    lrs = {s[k] for k in ("agent.params.actor_lr", "agent.params.critic_lr") if k in s}
    if len(lrs) > 1:
        deviations["agent.params.critic_lr"] = f"actor_lr ≠ critic_lr ({sorted(lrs)}); pbrl uses actor_lr for both"
    for key, value in PBRL_VALUES.items():
        if key in s and s[key] == value:
            deviations.pop(key, None)
    return _used_sections(out, spec), deviations


def _fast_sac(spec: RunSpec) -> bool:
    """Whether the run's SAC is FastSAC (``agent.impl=fast``), which expresses B-Pref's ``alpha_lr``,
    ``log_std_bounds`` and target-update count: every SAC-based run (PEBBLE family, the SAC baselines) but learner=regret's, whose
    greedy-advantage actor (``GreedyAdvantageSAC``, its own ``train``) has no fast version."""
    return spec.method in ("pebble", "sac") and spec.learner != "regret"


def _qpa_dmc(spec: RunSpec) -> bool:
    """A QPA run on DMC: train_QPA.py trains the reward with train_reward_iter, crops included, on every env
    but MetaWorld (L136–146: MetaWorld runs train_reward's epochs, without crops)."""
    return spec.query == "qpa" and not spec.env.startswith("metaworld:")


def _used_sections(out: dict[str, Any], spec: RunSpec) -> dict[str, Any]:
    """``out`` without the keys of sections ``spec``'s run has not: the SAC baseline asks no labels
    and has no learner; reward-free learners (cpl, ipl, piql, bc) have no agent; offline ones
    (every reward-free catalogue entry: its data is a dataset) ask no labels either."""
    drop: tuple[str, ...] = ()
    if spec.method == "sac":
        drop = ("learner.", *_LABEL_SECTIONS)
    elif spec.method in ("cpl", "ipl", "piql", "bc"):
        drop = ("agent.", *_LABEL_SECTIONS)
    return {k: v for k, v in out.items() if not k.startswith(drop)}


def nested(overrides: dict[str, Any]) -> dict[str, Any]:
    """Dotted keys → the nested mapping of a config file (``{"agent.batch_size": 256}`` → ``{"agent": {"batch_size": 256}}``)."""
    out: dict[str, Any] = {}
    for key, value in overrides.items():
        *sections, leaf = key.split(".")
        node = out
        for section in sections:
            node = node.setdefault(section, {})
        node[leaf] = value
    return out
