"""Episode seeds: training and evaluation draw from ranges that never overlap.

- evaluation: episode k of every evaluation (EvalCallback's, the final one, `roadsight eval`) is
  seeded `EVAL_SEED_BASE + k` (10_000, 10_001, ...), the same episodes for every run and driver;
- training with run seed S and n_envs envs: env i's k-th episode is seeded
  `train_seed_base(S) + i + n_envs * k`, in [BLOCK * (S + 1), BLOCK * (S + 2)) (BLOCK = 10^7),
  so never below 10_000_000 (hence never an eval seed) and never another run seed's;
- a resumed run restarts its envs at `train_seed_base(S) + done_timesteps` (rounded up to n_envs):
  an env plays at most one episode per step, so no episode before the interruption repeats.
"""

from __future__ import annotations

import gymnasium as gym

EVAL_SEED_BASE = 10_000
TRAIN_SEED_BLOCK = 10_000_000


def train_seed_base(seed: int, done_timesteps: int = 0, n_envs: int = 1) -> int:
    """The seed of env 0's next episode for run seed `seed` after `done_timesteps` steps."""
    offset = -(-int(done_timesteps) // n_envs) * n_envs  # ceil to a multiple of n_envs
    return TRAIN_SEED_BLOCK * (int(seed) + 1) + offset


class EpisodeSeeds(gym.Wrapper, gym.utils.RecordConstructorArgs):
    """Every reset is seeded: `reset(seed=s)` starts the sequence s, s + stride, s + 2 stride, ...
    and a plain `reset()` (a VecEnv's auto-reset) takes the next seed of that sequence.

    Without it, a VecEnv seeds only the first episode; with it, episode k's scene depends on its
    seed alone, not on how many steps earlier episodes took.
    """

    def __init__(self, env: gym.Env, stride: int = 1):
        gym.utils.RecordConstructorArgs.__init__(self, stride=stride)
        gym.Wrapper.__init__(self, env)
        self.stride = int(stride)
        self.next_seed: int | None = None

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        if seed is None and self.next_seed is not None:
            seed = self.next_seed
        if seed is not None:
            self.next_seed = int(seed) + self.stride
        obs, info = self.env.reset(seed=seed, options=options)
        info["episode_seed"] = seed
        return obs, info
