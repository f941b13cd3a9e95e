"""A privileged teacher for the policy: DAgger before reinforcement learning.

The teacher (a `sim.drivers` driver, by default IDMDriver) reads the simulator's state; the
student (the SB3 policy) reads only its observation (the object list of `kinematics` or of
`objects`, i.e. what perception saw). This is "Learning by Cheating" (Chen et al., CoRL 2019) in
its simplest form, with DAgger (Ross et al., AISTATS 2011) against the student's own mistakes:

- `TeacherLabels` (in each env worker) puts the teacher's action for the state just observed
  into `info["teacher_action"]`, after every reset and step;
- `dagger()` collects `steps` labelled env steps over `rounds` rounds; in round r the teacher
  drives with probability `beta ** r` per step (round 0: the teacher alone, i.e. behaviour
  cloning), the student's deterministic action otherwise; after each round the policy is
  trained on everything collected so far: cross-entropy to the teacher's action (optionally
  weighted per action, `action_weights`: a missed SLOWER can cost more than a missed FASTER),
  and the value head regressed on the discounted return of the collected steps (so that PPO starts
  from a critic that already knows crashes are bad).

PPO then starts from the imitating policy. Only actor-critic (PPO) policies: a DQN has no
action distribution to imitate with.

Resumable: after each round `dagger(state=PATH)` writes everything the next round needs (the
data so far, the policy and its optimizer, the random generator, the round) atomically to PATH;
given an existing PATH it continues after that round. The resumed rounds play fresh episodes
(`reseed(steps collected so far)` restarts the envs), so they are not the very episodes an
uninterrupted run would have played; the data, weights and budget carry over exactly.
"""

from __future__ import annotations

import io
import json
import logging
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import gymnasium as gym
import numpy as np
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.policies import ActorCriticPolicy
from stable_baselines3.common.vec_env import VecEnv
from tqdm import tqdm

from roadsight.errors import ConfigError, UserInputError
from roadsight.io import atomic_write_bytes

log = logging.getLogger(__name__)
LABEL = "teacher_action"


class TeacherLabels(gym.Wrapper, gym.utils.RecordConstructorArgs):
    """`info["teacher_action"]`: what `teacher` (a sim.drivers driver) would do in the state the
    env is in after each reset and step (the state of the observation returned with it)."""

    def __init__(self, env: gym.Env, teacher):
        gym.utils.RecordConstructorArgs.__init__(self)
        gym.Wrapper.__init__(self, env)
        self.teacher = teacher

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        obs, info = self.env.reset(seed=seed, options=options)
        self.teacher.reset(self.env, seed)
        info[LABEL] = int(self.teacher.act(self.env))
        return obs, info

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        info[LABEL] = int(self.teacher.act(self.env))
        return obs, reward, terminated, truncated, info


@dataclass(frozen=True)
class DaggerOptions:
    """`imitation.*` of conf/train.yaml."""

    steps: int = 8192  # labelled env steps in all (all envs together)
    rounds: int = 4  # collect-then-train rounds
    beta: float = 0.5  # round r: the teacher drives a step with probability beta ** r
    epochs: int = 10  # passes over the aggregated data after each round
    batch_size: int = 256
    learning_rate: float = 1.0e-3
    value_coef: float = 0.5  # weight of the value regression beside the cross-entropy
    # cost-sensitive imitation: the cross-entropy of a step weighs action_weights[its label]
    # (a weighted mean); None: every label alike
    action_weights: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        if self.action_weights is not None:
            weights = tuple(self.action_weights)
            if not weights or any(isinstance(w, bool) or not isinstance(w, int | float)
                                  or not w >= 0 for w in weights) or not any(weights):
                raise ConfigError(f"imitation.action_weights={list(weights)!r}: need null or "
                                  f"one weight >= 0 per action, not all 0")
            object.__setattr__(self, "action_weights", tuple(float(w) for w in weights))
        for key in ("steps", "rounds", "epochs", "batch_size"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"imitation.{key}={value!r}: need a whole number >= 1")
        if not 0.0 <= self.beta <= 1.0:
            raise ConfigError(f"imitation.beta={self.beta!r}: need a value in [0, 1]")
        if not self.learning_rate > 0:
            raise ConfigError(f"imitation.learning_rate={self.learning_rate!r}: need > 0")


def _reset_label(venv: VecEnv, i: int) -> int:
    """The teacher's label of env i's first observation (the base VecEnv's reset_infos)."""
    return int(venv.unwrapped.reset_infos[i][LABEL])


def discounted_returns(rewards: np.ndarray, dones: np.ndarray, gamma: float) -> np.ndarray:
    """Per-step discounted return of one env's (T,) rewards; an episode ends where done is
    true; the last, unfinished episode is cut at the end of the data (no bootstrap)."""
    out = np.zeros(len(rewards), np.float32)
    running = 0.0
    for t in range(len(rewards) - 1, -1, -1):
        running = rewards[t] + (0.0 if dones[t] else gamma * running)
        out[t] = running
    return out


def _save_state(path: Path, round_done: int, policy, optimizer, rng: np.random.Generator,
                data: list[tuple[np.ndarray, np.ndarray, np.ndarray]], stats: dict) -> None:
    import torch as th

    state = {"round": round_done, "policy": policy.state_dict(),
             "optimizer": optimizer.state_dict(), "rng": json.dumps(rng.bit_generator.state),
             "stats": json.dumps(stats),
             "data": [tuple(th.from_numpy(np.ascontiguousarray(x)) for x in part)
                      for part in data]}
    buf = io.BytesIO()
    th.save(state, buf)
    # zlib: object lists are mostly empty rows (about 5x smaller; kept in git between sittings)
    atomic_write_bytes(path, zlib.compress(buf.getvalue(), 1))


def _load_state(path: Path, policy, optimizer, rng: np.random.Generator, options: DaggerOptions):
    """Restore what `_save_state` wrote into `policy`, `optimizer` and `rng`; returns (rounds
    done, data, stats of the last round). A file that is not such a state names itself."""
    import torch as th

    try:
        raw = path.read_bytes()
        raw = raw if raw[:2] == b"PK" else zlib.decompress(raw)  # PK: torch.save's plain zip
        state = th.load(io.BytesIO(raw), map_location=policy.device, weights_only=True)
        policy.load_state_dict(state["policy"])
        optimizer.load_state_dict(state["optimizer"])
        rng.bit_generator.state = json.loads(state["rng"])
        data = [tuple(x.numpy() for x in part) for part in state["data"]]
        done, stats = int(state["round"]), json.loads(state["stats"])
    except Exception as e:  # any unreadable or foreign file: say which and why
        raise UserInputError(f"{path}: not a loadable DAgger state of this policy "
                             f"({type(e).__name__}: {e}); delete it to imitate afresh") from e
    if not 0 < done <= options.rounds or len(data) != done:
        raise UserInputError(f"{path}: holds {done} DAgger rounds of data for {len(data)}, "
                             f"with imitation.rounds={options.rounds}; delete it to imitate "
                             f"afresh")
    return done, data, stats


def dagger(model: BaseAlgorithm, venv: VecEnv, options: DaggerOptions, seed: int = 0,
           progress_bar: bool = True, state: Path | None = None,
           reseed: Callable[[int], None] | None = None, tb_log: str | Path | None = None) -> dict:
    """Train `model.policy` to imitate the teacher whose labels `venv`'s infos carry; returns
    the statistics of the last round (teacher agreement of the student, episodes, crashes).
    `state`: where each finished round is saved, and resumed from when the file exists;
    `reseed(steps)` is called with the steps already collected before a resumed round;
    `tb_log`: each round's `imitation/*` scalars (round_scalars) go to TB_LOG/imitation, at the
    env steps collected so far (the imitation's learning curve)."""
    import torch as th

    policy = model.policy
    if not isinstance(policy, ActorCriticPolicy):
        raise ConfigError(f"imitation.teacher needs an actor-critic policy (agent=ppo), not "
                          f"{type(model).__name__}; set imitation.teacher=null")
    weights = options.action_weights
    n_actions = int(venv.action_space.n)
    if weights is not None and len(weights) != n_actions:
        raise ConfigError(f"imitation.action_weights={list(weights)!r}: need {n_actions} weights, "
                          f"one per action of the env's action space")
    rng = np.random.default_rng(seed)
    optimizer = th.optim.Adam(policy.parameters(), lr=options.learning_rate)
    n = venv.num_envs
    per_round = -(-options.steps // options.rounds)
    data: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []  # (obs, labels, returns) a round
    first, stats = 0, {}
    if state is not None and Path(state).is_file():
        first, data, stats = _load_state(Path(state), policy, optimizer, rng, options)
        log.info("dagger: resuming after round %d of %d from %s", first - 1, options.rounds,
                 state)
        if reseed is not None:
            reseed(sum(len(labels) for _, labels, _ in data))
    board = None
    if tb_log is not None:
        from stable_baselines3.common.logger import configure

        board = configure(str(Path(tb_log) / "imitation"), ["tensorboard"])
    bar = tqdm(total=options.steps, desc="dagger", unit="step", disable=not progress_bar,
               initial=min(first * per_round, options.steps))
    obs = venv.reset()
    labels = np.array([_reset_label(venv, i) for i in range(n)])
    clock, seconds = time.monotonic(), stats.get("seconds", 0.0)  # over every sitting
    for r in range(first, options.rounds):
        beta = options.beta ** r
        steps = min(per_round, options.steps - r * per_round)
        obs_r, labels_r, rewards_r, dones_r = [], [], [], []
        agree, crashes, episodes = 0, 0, 0
        for _ in range(-(-steps // n)):
            student = model.predict(obs, deterministic=True)[0]
            agree += int(np.sum(student == labels))
            teacher_drives = rng.random(n) < beta
            actions = np.where(teacher_drives, labels, student)
            obs_r.append(obs)
            labels_r.append(labels)
            obs, rewards, dones, infos = venv.step(actions)
            rewards_r.append(rewards)
            dones_r.append(dones)
            labels = np.array([_reset_label(venv, i) if dones[i] else infos[i][LABEL]
                               for i in range(n)])
            episodes += int(np.sum(dones))
            crashes += sum(bool(infos[i].get("crashed")) for i in range(n) if dones[i])
            bar.update(n)
        rewards_r, dones_r = np.array(rewards_r), np.array(dones_r)
        rets = np.stack([discounted_returns(rewards_r[:, i], dones_r[:, i], model.gamma)
                         for i in range(n)], axis=1)
        data.append((np.concatenate(obs_r), np.concatenate(labels_r), rets.reshape(-1)))
        loss = _fit(policy, optimizer, *(np.concatenate(x) for x in zip(*data, strict=True)),
                    options, rng)
        stats = {"round": r, "beta": beta, "student_agreement": agree / (len(obs_r) * n),
                 "episodes": episodes, "crashes": crashes, "loss": loss,
                 "dataset": int(sum(len(labels) for _, labels, _ in data)),
                 "seconds": round(seconds + time.monotonic() - clock, 1)}
        log.info("dagger round %d (beta %.2f): student agreed with the teacher on %.1f%% of "
                 "steps, %d/%d episodes crashed, loss %.3f", r, beta,
                 100 * stats["student_agreement"], crashes, episodes, loss)
        if board is not None:
            for key, value in round_scalars(stats).items():
                board.record(key, value)
            board.dump(stats["dataset"])
        if state is not None:
            _save_state(Path(state), r + 1, policy, optimizer, rng, data, stats)
    bar.close()
    if board is not None:
        board.close()
    return stats


def round_scalars(stats: dict) -> dict[str, float]:
    """A DAgger round's TensorBoard scalars: the student's agreement with the teacher on the
    states visited, the share of those episodes that crashed (the student drives with
    probability 1 - beta), the fit's loss and beta."""
    episodes = stats["episodes"]
    return {"imitation/student_agreement": stats["student_agreement"],
            "imitation/crash_rate": stats["crashes"] / episodes if episodes else float("nan"),
            "imitation/loss": stats["loss"], "imitation/beta": stats["beta"]}


def _fit(policy: ActorCriticPolicy, optimizer, obs: np.ndarray, labels: np.ndarray,
         returns: np.ndarray, options: DaggerOptions, rng: np.random.Generator) -> float:
    """`options.epochs` passes of cross-entropy (weighted by `options.action_weights` of the
    labels) + value regression; the last epoch's loss."""
    import torch as th

    weights = None if options.action_weights is None else th.as_tensor(
        options.action_weights, dtype=th.float32, device=policy.device)
    policy.set_training_mode(True)
    loss_sum, batches = 0.0, 0
    for _ in range(options.epochs):
        order = rng.permutation(len(labels))
        loss_sum, batches = 0.0, 0
        for start in range(0, len(order), options.batch_size):
            idx = order[start:start + options.batch_size]
            obs_t = th.as_tensor(obs[idx], device=policy.device)
            act_t = th.as_tensor(labels[idx], device=policy.device)
            ret_t = th.as_tensor(returns[idx], device=policy.device)
            values, log_prob, _ = policy.evaluate_actions(obs_t, act_t)
            if weights is None:
                imitation = -log_prob.mean()
            else:
                w = weights[act_t.long()]
                imitation = -(w * log_prob).sum() / w.sum().clamp_min(1e-8)
            loss = imitation + options.value_coef * ((values.flatten() - ret_t) ** 2).mean()
            optimizer.zero_grad()
            loss.backward()
            th.nn.utils.clip_grad_norm_(policy.parameters(), 0.5)
            optimizer.step()
            loss_sum += float(loss.detach())
            batches += 1
    policy.set_training_mode(False)
    return loss_sum / max(batches, 1)
