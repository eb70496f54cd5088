"""The built-in agents, registered by name (loaded by :mod:`pbrl.registry` at the first lookup).

A new agent type is one module with an :class:`~pbrl.agents.base.SB3Agent` adapter plus one
``register_agent`` line here; a new SAC implementation (``agent.impl``) is one
``register_sac_impl`` line whose factory builds a SAC-like model like :func:`~pbrl.agents.sac.make_sac`.
"""

from __future__ import annotations

from pbrl.agents.config import PPOConfig, SACConfig
from pbrl.agents.fast_sac import FastSAC, make_fast_sac
from pbrl.agents.ppo import PPOAgent
from pbrl.agents.sac import SACAgent, make_sac
from pbrl.registry import register_agent, register_sac_impl

register_agent("sac", SACConfig, SACAgent, "stable-baselines3 SAC on the learned reward (PEBBLE: relabeling, pre-training, critic reset)")
register_agent("ppo", PPOConfig, PPOAgent, "stable-baselines3 PPO on the learned reward (PrefPPO)", on_policy=True)

register_sac_impl("sb3", lambda env, config, seed, algorithm: make_sac(env, config, seed, algorithm=algorithm),
                  "stable-baselines3's SAC")
register_sac_impl("fast", make_fast_sac, "FastSAC: SB3's SAC with one fused update (batched twin critic, CUDA graph on GPU), replay on the agent's device",
                  model_class=FastSAC)
