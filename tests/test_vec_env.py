"""PrefPPO's vector of envs: subprocesses for n_envs > 1, the learned reward of the whole vector in one call."""

import numpy as np
from stable_baselines3 import PPO
from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv

from pbrl import envs
from pbrl.agents.preference_env import PreferenceVecEnv
from pbrl.agents.vec_env import make_vec_env
from pbrl.learners import BTEnsemble, BTEnsembleConfig
from pbrl.transitions import TransitionLog


def factory(seed):
    return lambda: envs.make("gym:HalfCheetah-v5", seed=seed, max_episode_steps=20)


class CountingLearner(BTEnsemble):
    calls: list[int]

    def reward(self, obs, actions, next_obs):
        self.calls.append(len(obs))
        return super().reward(obs, actions, next_obs)


def test_one_env_in_process_several_in_subprocesses():
    assert isinstance(make_vec_env([factory(0)]), DummyVecEnv)
    venv = make_vec_env([factory(0), factory(1)], start_method="fork")
    try:
        assert isinstance(venv, SubprocVecEnv) and venv.num_envs == 2
    finally:
        venv.close()


def test_learned_reward_of_the_whole_vector_in_one_call_and_ppo_learns_on_it():
    venv = make_vec_env([factory(0), factory(1), factory(2)], start_method="fork")
    learner = CountingLearner(17, 6, BTEnsembleConfig(hidden_sizes=(8,)), seed=0)
    learner.calls = []
    env = PreferenceVecEnv(venv, learner, TransitionLog(1000, n_envs=3))
    try:
        obs = env.reset()
        actions = np.stack([env.action_space.sample() for _ in range(3)])
        _, rewards, _, infos = env.step(actions)
        assert learner.calls == [3]  # one call for the vector
        expected = BTEnsemble.reward(learner, obs, env.scale.to_unit(actions), None)
        np.testing.assert_allclose(rewards, expected, rtol=1e-5)
        assert all("true_reward" in info for info in infos)
        model = PPO("MlpPolicy", env, n_steps=16, batch_size=16, n_epochs=1, seed=0, device="cpu")
        model.learn(96)  # two rollouts of 16 steps × 3 envs
        assert model.num_timesteps == 96 and len(env.episode_returns) == 3  # one finished 20-step episode per env
    finally:
        env.close()
