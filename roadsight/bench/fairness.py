"""Suite `fairness`: a scripted driver's crashes per env, and how many were its own doing."""

from __future__ import annotations

from hydra.utils import instantiate
from tqdm import tqdm

from sim.make import make_env


def drive_episodes(env, driver, seeds: list[int]) -> list[dict]:
    """Drive one episode per seed; per episode: crash, what was hit, `info["at_fault"]`, speed."""
    episodes = []
    for seed in seeds:
        env.reset(seed=seed)
        driver.reset(env, seed)
        speeds, info, done = [], {}, False
        while not done:
            _, _, terminated, truncated, info = env.step(driver.act(env))
            speeds.append(float(env.unwrapped.vehicle.speed))
            done = terminated or truncated
        episodes.append(
            {
                "seed": seed,
                "decisions": len(speeds),
                "crashed": bool(info.get("crashed")),
                "crashed_into": info.get("crashed_into"),
                "at_fault": info.get("at_fault"),
                "mean_speed": sum(speeds) / len(speeds),
            }
        )
    return episodes


def summarize(episodes: list[dict]) -> dict:
    """Rates over episodes; at-fault shares over the crashes they count (None without any)."""
    n = len(episodes)
    crashes = [e for e in episodes if e["crashed"]]
    ped = [e for e in crashes if e["crashed_into"] == "pedestrian"]

    def share(group: list[dict]) -> float | None:
        return sum(bool(e["at_fault"]) for e in group) / len(group) if group else None

    return {
        "episodes": n,
        "crash_rate": len(crashes) / n,
        "pedestrian_collision_rate": len(ped) / n,
        "at_fault_share": share(crashes),
        "pedestrian_at_fault_share": share(ped),
        "not_at_fault_crashes": sum(not e["at_fault"] for e in crashes),
        "mean_speed": sum(e["mean_speed"] for e in episodes) / n,
        "mean_decisions": sum(e["decisions"] for e in episodes) / n,
    }


def run_fairness_suite(envs: list[str], driver: dict, episodes: int, seed: int) -> dict:
    """`driver` (a driver config) on `episodes` seeds from `seed` in each env of `envs`."""
    rows = []
    seeds = list(range(seed, seed + episodes))
    for env_id in tqdm(envs, desc="fairness suite"):
        env = make_env(env_id)
        try:
            result = summarize(drive_episodes(env, instantiate(driver), seeds))
        finally:
            env.close()
        rows.append({"case": env_id, **result})
    unit = f"per episode, seeds {seeds[0]}..{seeds[-1]}"
    return {"suite": "fairness", "unit": unit, "rows": rows}
