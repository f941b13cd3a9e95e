"""Hydra callback of the roadsight launchers (conf/hydra/launcher/*.yaml, conf/hydra/sweep_jobs/).

Before a multirun starts (main process) it reports a launcher setting left at `???` (a SLURM
partition) as one line, and names the job directories from their overrides for every command
(a primary config's own `hydra:` section would otherwise win over a launcher config). In each
job's process (a joblib worker, a submitit or SLURM task) it gives torch and the BLAS libraries
the job's share of the cores, so parallel jobs do not oversubscribe them, and lets a joblib
worker start processes of its own (a job's SubprocVecEnv workers).
"""

from __future__ import annotations

import hashlib
import logging
import multiprocessing
import os
import sys
import warnings
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf, open_dict

log = logging.getLogger(__name__)
JOB_SUBDIR = "${roadsight_job_dir:}"  # <job number>_<overrides>, e.g. 3_agent=dqn,seed=1
NAME_CHARS = 120  # a file name holds 255 bytes; an Optuna trial's overrides easily exceed that
THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def quiet_schema_warning() -> None:
    """conf/hydra/launcher/ extends the plugins' launcher schemas of the same name on purpose:
    silence Hydra's deprecation warning about it (in the main process and in each worker)."""
    warnings.filterwarnings("ignore", message=r"\s*'hydra/launcher/\w+' is validated against")


def job_threads(cpus: int | None, parallel_jobs: int | None, cores: int | None = None) -> int:
    """Threads for one job: its `cpus` when the launcher reserves them (SLURM's cpus_per_task),
    else the machine's cores shared among `parallel_jobs` (-1 or None: one job per core)."""
    if cpus:
        return max(1, int(cpus))
    cores = cores or os.cpu_count() or 1
    if not parallel_jobs or parallel_jobs < 0:
        return 1
    return max(1, cores // int(parallel_jobs))


def job_dir_name(num: int, override_dirname: str, limit: int = NAME_CHARS) -> str:
    """`<num>_<overrides>`, floats cut to 4 significant digits, at most `limit` characters (a
    longer name ends with a hash of the whole, so two names never meet)."""
    items = []
    for item in override_dirname.split(","):
        key, eq, value = item.partition("=")
        try:
            short = f"{float(value):.4g}" if eq and "." in value else value
        except ValueError:
            short = value
        items.append(f"{key}{eq}{short}")
    name = f"{num}_{','.join(items)}".replace("/", "_")
    if len(name) > limit:
        digest = hashlib.sha1(name.encode()).hexdigest()[:8]
        name = f"{name[: limit - 9]}-{digest}"
    return name


def _job_dir_resolver(*, _root_: DictConfig) -> str:
    return job_dir_name(_root_.hydra.job.num, _root_.hydra.job.override_dirname)


def register_resolver() -> None:
    """`${roadsight_job_dir:}`, in each process that resolves a job's hydra.sweep.subdir."""
    if not OmegaConf.has_resolver("roadsight_job_dir"):
        OmegaConf.register_new_resolver("roadsight_job_dir", _job_dir_resolver)


def missing_keys(node: DictConfig, prefix: str) -> list[str]:
    """Full keys of `node` whose value is `???`."""
    found = []
    for key in node:
        full = f"{prefix}.{key}"
        if OmegaConf.is_missing(node, key):
            found.append(full)
        elif isinstance(node[key], DictConfig):
            found += missing_keys(node[key], full)
    return found


class SweepJobs(Callback):
    """Job dir names (`subdir`, `exclude_keys` of override_dirname) and threads per job."""

    def __init__(self, cpus: int | None = None, parallel_jobs: int | None = None,
                 name_jobs: bool = True, exclude_keys: list[str] | None = None) -> None:
        self.cpus = cpus
        self.parallel_jobs = parallel_jobs
        self.hydra_overrides = {"hydra.sweep.subdir": JOB_SUBDIR if name_jobs else None,
                                "hydra.job.config.override_dirname.exclude_keys":
                                f"[{','.join(exclude_keys)}]" if exclude_keys else None}
        register_resolver()

    def __setstate__(self, state: dict) -> None:
        """Unpickled in a joblib worker or a submitit job: the resolver is needed there too."""
        self.__dict__.update(state)
        register_resolver()
        quiet_schema_warning()

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        launcher = config.hydra.launcher
        missing = missing_keys(launcher, "hydra.launcher")
        if str(launcher.get("_target_", "")).endswith("SlurmLauncher") and not launcher.get(
            "partition"
        ):  # the plugin's schema turns a `???` in our yaml back into its default, None
            missing.insert(0, "hydra.launcher.partition")
        if missing:  # SystemExit passes Hydra's error reporting: one line, no traceback
            key = missing[0]
            sys.exit(f"roadsight: {key}: no value given for hydra/launcher="
                     f"{config.hydra.runtime.choices.get('hydra/launcher')}; add {key}=... "
                     "to the command line (`sinfo` lists SLURM partitions)")
        # an Optuna study stored in the sweep dir opens it before any job has created it
        Path(config.hydra.sweep.dir).mkdir(parents=True, exist_ok=True)
        # Each job's config is composed again from the master's hydra overrides plus its own
        # (ConfigLoader.load_sweep_config): ours go there, unless the command line set them.
        given = {o.split("=", 1)[0] for o in config.hydra.overrides.hydra}
        extra = [f"{k}={v}" for k, v in self.hydra_overrides.items() if v and k not in given]
        with open_dict(config.hydra.overrides):
            config.hydra.overrides.hydra = [*config.hydra.overrides.hydra, *extra]

    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        n = job_threads(self.cpus, self.parallel_jobs)
        for var in THREAD_VARS:  # read by torch / numpy when they load later in this job
            os.environ[var] = str(n)
        if "torch" in sys.modules:  # a reused worker process already loaded torch
            sys.modules["torch"].set_num_threads(n)
        if "cv2" in sys.modules:
            sys.modules["cv2"].setNumThreads(n)
        log.debug("job threads: %d", n)
        if multiprocessing.get_start_method(allow_none=True) == "loky":
            # a joblib worker runs with loky's start method as the default, and a process it
            # starts (forkserver, spawn) sets that method again before it runs, where loky is
            # not imported: "cannot find context for 'loky'" (a train job with n_envs > 1)
            multiprocessing.set_start_method(None, force=True)
