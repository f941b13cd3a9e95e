"""Suite `train`: PPO training env-steps/s per observation (kinematics, objects, embedding,
pixels) at each `n_envs`, as ratios to kinematics at the same `n_envs`, measured in one run.

Each case is built by agents/build.py from the `train` config exactly as `roadsight train` builds
it (workers, observation wrapper, detector, SB3 algorithm, PerceptionMetrics callback), warmed up
with one rollout and one update, then `model.learn(steps)` is timed (rollouts and updates
together: what a training run spends per env step). Evaluation and checkpoints are left out.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path

from omegaconf import DictConfig, open_dict

from roadsight.bench.timing import interleaved_rates
from roadsight.errors import ConfigError
from roadsight.paths import CONF_DIR

BASELINE = "kinematics"  # the case every ratio divides by (same n_envs)


def train_config(overrides: list[str], key: str) -> tuple[DictConfig, str]:
    """The `train` config with `overrides` and its camera choice; ConfigError naming `key`."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.errors import HydraException

    try:
        if GlobalHydra.instance().is_initialized():  # inside `roadsight bench`: the same conf/
            cfg = compose("train", overrides, return_hydra_config=True)
        else:
            with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
                cfg = compose("train", overrides, return_hydra_config=True)
    except HydraException as e:
        raise ConfigError(f"{key}: {' '.join(overrides)}: {e}") from e
    camera = cfg.hydra.runtime.choices.get("camera") or "bev"
    with open_dict(cfg):
        del cfg["hydra"]
    return cfg, camera


def training_case(overrides: list[str], steps: int, key: str, work_dir: Path,
                  stack: ExitStack) -> Callable[[], int]:
    """A warmed-up case: `run()` trains `steps` more env steps and returns how many it did.
    Its vec env is closed by `stack`."""
    from agents.build import NEEDS_DETECTOR, build_agent, build_env, load_perception, rollout_chunk
    from agents.perception_metrics import PerceptionMetrics
    from agents.seeding import train_seed_base

    cfg, camera = train_config([*overrides, f"total_timesteps={steps}"], key)
    perception = None
    if cfg.observation.name in NEEDS_DETECTOR:
        perception = load_perception(cfg, camera, work_dir)
    venv = build_env(cfg, cfg.n_envs, perception)
    stack.callback(venv.close)
    try:
        model = build_agent(cfg, venv, None, perception)
    except ConfigError as e:
        raise ConfigError(f"{key}: steps={steps} (each case's total_timesteps): {e}") from e
    venv.seed(train_seed_base(cfg.seed, 0, cfg.n_envs))  # as agents/training.py
    model.learn(rollout_chunk(model), callback=PerceptionMetrics())  # warm-up

    def run() -> int:
        before = model.num_timesteps
        model.learn(steps, callback=PerceptionMetrics(), reset_num_timesteps=False)
        return model.num_timesteps - before

    return run


def training_rates(cases: dict[str, list[str]], steps: int, rounds: int, key: str,
                   desc: str) -> dict[str, dict[str, float]]:
    """Build and warm up every case (name -> `train` overrides), then time them interleaved
    (roadsight.bench.timing.interleaved_rates): env steps/s per case."""
    with tempfile.TemporaryDirectory(prefix="roadsight-bench-train-") as tmp, ExitStack() as stack:
        runs = {name: training_case(ov, steps, f"{key}.{name}", Path(tmp) / str(i), stack)
                for i, (name, ov) in enumerate(cases.items())}
        return interleaved_rates(runs, rounds, desc=desc)


def verdict(rows: list[dict], target: dict) -> dict:
    """The target's measured ratio and PASS/MISS (None and "not measured" without its row)."""
    row = next((r for r in rows if r["observation"] == target["case"]
                and r["n_envs"] == target["n_envs"]), None)
    ratio = None if row is None else row["vs_kinematics"]
    status = "not measured" if ratio is None else ("PASS" if ratio >= target["ratio"] else "MISS")
    return {**target, "measured": ratio, "status": status}


def run_train_suite(cases: dict, n_envs: list[int], steps: int, rounds: int, args: list[str],
                    target: dict, seed: int) -> dict:
    """Training env-steps/s of each case of `cases` (name -> `train` overrides, after `args`)
    at each of `n_envs`, with its ratio to the `kinematics` case at the same n_envs."""
    if BASELINE not in cases:
        raise ConfigError(f"train.cases: {', '.join(cases)}: the ratios need a case named "
                          f"{BASELINE!r}")
    rows = []
    for n in n_envs:
        group = {name: [*args, *ov, f"n_envs={n}", f"seed={seed}"] for name, ov in cases.items()}
        rates = training_rates(group, steps, rounds, "train.cases", f"train suite n_envs={n}")
        base = rates[BASELINE]["rate"]
        rows += [{"case": f"{name} n_envs={n}", "observation": name, "n_envs": n,
                  "steps_per_s": r["rate"], "min": r["min"], "max": r["max"],
                  "steps": r["units"], "vs_kinematics": r["rate"] / base}
                 for name, r in rates.items()]
    check = verdict(rows, target)
    measured = "-" if check["measured"] is None else f"{check['measured']:.2f}x"
    note = (f"target: {check['case']} at n_envs={check['n_envs']} >= {check['ratio']}x "
            f"{BASELINE}: {measured} {check['status']}")
    return {"suite": "train", "unit": f"PPO env steps/s while training, {steps} steps x {rounds} "
            f"round(s) per case; ratio to {BASELINE} at the same n_envs",
            "rows": rows, "target": check, "notes": [note]}
