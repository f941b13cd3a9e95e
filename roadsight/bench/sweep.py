"""Suite `sweep`: the same short training jobs as one multirun, one after another (Hydra's basic
launcher) and in parallel (hydra/launcher=joblib), timed in one run."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def time_multirun(command: list[str], sweep_dir: Path) -> float:
    """Wall seconds of `roadsight <command> hydra.sweep.dir=sweep_dir`; raises if it fails."""
    roadsight = str(Path(sys.executable).with_name("roadsight"))
    env = {**os.environ, "SDL_VIDEODRIVER": "offscreen"}
    start = time.perf_counter()
    proc = subprocess.run([roadsight, *command, f"hydra.sweep.dir={sweep_dir}"],
                          capture_output=True, text=True, env=env)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"sweep suite: roadsight {' '.join(command)} failed:\n"
                           f"{proc.stderr[-2000:]}")
    return seconds


def run_sweep_suite(command: str, args: list[str], jobs: int, workers: int, seed: int) -> dict:
    """`jobs` runs of `roadsight command args` (seeds seed..seed+jobs-1), sequential vs joblib
    with `workers` processes; the ratio is parallel / sequential wall time (lower is better)."""
    seeds = ",".join(str(seed + k) for k in range(jobs))
    base = [command, "-m", *args, f"seed={seeds}"]
    with tempfile.TemporaryDirectory(prefix="roadsight-bench-sweep-") as tmp:
        sequential = time_multirun(base, Path(tmp) / "sequential")
        parallel = time_multirun([*base, "hydra/launcher=joblib",
                                  f"hydra.launcher.n_jobs={workers}"], Path(tmp) / "joblib")
    rows = [
        {"case": "one after another", "jobs": jobs, "workers": 1, "seconds": sequential,
         "ratio": 1.0},
        {"case": "hydra/launcher=joblib", "jobs": jobs, "workers": workers, "seconds": parallel,
         "ratio": parallel / sequential},
    ]
    return {"suite": "sweep", "unit": f"wall seconds of roadsight {command} -m", "rows": rows}
