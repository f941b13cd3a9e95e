"""A multirun's jobs (train, eval, any command) and their figures grouped over seeds.

A job is a directory under the sweep holding `.hydra/overrides.yaml` (Hydra writes it first);
its `run.json` says how it ended and `metrics.json` holds its final figures. Jobs that did not
end "ok" are kept, with their error, so a failure is never dropped from a summary.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml

from agents.finished import IGNORED_KEYS
from agents.metrics import bootstrap_interval
from roadsight.io import flatten_keys

SEED_KEYS = ("seed", "+seed", "++seed")  # overrides that only pick a seed: not a group key
# overrides that change how a job runs, not what it measures: not group keys either (the keys
# a finished training run ignores, and how many eval episodes get a video)
QUIET_KEYS = (*IGNORED_KEYS, "videos")


@dataclass
class Job:
    """One job directory: its overrides, how it ended, its final figures (flattened keys)."""

    path: Path
    overrides: list[str]
    status: str  # run.json's status: ok | failed | error | running; "missing": no run.json
    error: str | None = None
    metrics: dict = field(default_factory=dict)

    @property
    def group(self) -> str:
        """The overrides but the seed, sorted: the jobs of one configuration share it."""
        keys = (*SEED_KEYS, *QUIET_KEYS)
        return " ".join(sorted(o for o in self.overrides
                               if o.split("=", 1)[0].lstrip("+") not in keys))


def _job_order(path: Path, sweep_dir: Path) -> tuple:
    """Hydra numbers jobs 0, 1, ..., 10 (our launchers name them <num>_<overrides>): sort by
    that number, other names after, by name."""
    head = path.relative_to(sweep_dir).parts[0].split("_", 1)[0]
    return (0, int(head), str(path)) if head.isdigit() else (1, 0, str(path))


def read_job(job: Path) -> Job:
    """A job directory as a Job; a job with no metrics.json gets status "failed" at least."""
    overrides = yaml.safe_load((job / ".hydra" / "overrides.yaml").read_text()) or []
    run_file, metrics_file = job / "run.json", job / "metrics.json"
    run = json.loads(run_file.read_text()) if run_file.exists() else {}
    metrics = flatten_keys(json.loads(metrics_file.read_text())) if metrics_file.exists() else {}
    # no run.json: a command older than run.json, done if it wrote its metrics
    status, error = run.get("status", "ok" if metrics else "missing"), run.get("error")
    if not metrics and status == "ok":
        status, error = "failed", "ended ok but wrote no metrics.json"
    elif status != "ok" and not error:
        error = {"running": "never finished (killed, or still running)",
                 "missing": "no run.json: the job ended before its command started"}.get(
                     status, f"status {status}")
    return Job(job, [str(o) for o in overrides], status, error, metrics)


def collect_jobs(sweep_dir: str | Path) -> list[Job]:
    """Every job under `sweep_dir` (at any depth), in launch order."""
    sweep_dir = Path(sweep_dir)
    if not sweep_dir.is_dir():
        raise FileNotFoundError(f"sweep={sweep_dir}: no such directory")
    dirs = [p.parent.parent for p in sweep_dir.rglob(".hydra/overrides.yaml")]
    dirs = [d for d in dirs if d != sweep_dir and ".submitit" not in d.parts]
    if not dirs:
        raise FileNotFoundError(f"sweep={sweep_dir}: no job directory (.hydra/overrides.yaml)")
    return [read_job(d) for d in sorted(dirs, key=lambda d: _job_order(d, sweep_dir))]


def numeric_metrics(jobs: list[Job]) -> list[str]:
    """The numeric metrics every finished job has, in the first one's order."""
    done = [j for j in jobs if j.status == "ok"]
    if not done:
        return []
    keys = [k for k, v in done[0].metrics.items()
            if isinstance(v, int | float) and not isinstance(v, bool)]
    return [k for k in keys if all(k in j.metrics for j in done)]


def check_metrics(jobs: list[Job], metrics: list[str]) -> None:
    """KeyError naming a requested metric that no finished job has (a typo); a metric only
    some jobs have (a driver's eval beside trained policies: no training time) is "-" for the
    groups without it."""
    done = [j for j in jobs if j.status == "ok"]
    for m in metrics:
        if done and not any(m in j.metrics for j in done):
            first = done[0]
            raise KeyError(f"no metric {m!r} in any finished job; {first.path / 'metrics.json'} "
                           f"has {sorted(first.metrics)[:20]}")


def group_stats(jobs: list[Job], metrics: list[str], n_boot: int = 1000,
                level: float = 0.95) -> list[dict]:
    """A row per group (overrides but the seed), in first-job order: n finished seeds, failed
    jobs, and per metric the mean, std (ddof 1) and a percentile bootstrap interval of the mean
    over the seeds (`n_boot` resamples, seeded: the same sweep gives the same table)."""
    groups: dict[str, list[Job]] = {}
    for job in jobs:
        groups.setdefault(job.group, []).append(job)
    rng = np.random.default_rng(0)
    rows = []
    for name, members in groups.items():
        done = [j for j in members if j.status == "ok"]
        row = {"overrides": name, "n": len(done), "failed": len(members) - len(done)}
        for m in metrics:
            values = np.array([float(j.metrics[m]) for j in done if m in j.metrics], float)
            if values.size == 0:
                row.update({m: math.nan, f"{m}_std": math.nan, f"{m}_lo": math.nan,
                            f"{m}_hi": math.nan})
                continue
            idx = rng.integers(0, values.size, size=(n_boot, values.size))
            lo, hi = bootstrap_interval(values, idx, level)
            row.update({m: float(values.mean()),
                        f"{m}_std": float(values.std(ddof=1)) if values.size > 1 else 0.0,
                        f"{m}_lo": lo, f"{m}_hi": hi})
        rows.append(row)
    return rows


def markdown(rows: list[dict], jobs: list[Job], metrics: list[str], sweep: str) -> str:
    """summary.md: mean +- std [95% interval] and n seeds per group, then the failed jobs."""
    head = ["overrides (but the seed)", "n seeds", *metrics]
    lines = [f"# Sweep {sweep}", "",
             f"{len(jobs)} jobs, {sum(j.status == 'ok' for j in jobs)} finished. Each cell: "
             "mean +- std over the seeds [95% bootstrap interval of the mean].", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [f"`{r['overrides']}`" if r["overrides"] else "(none)", str(r["n"])]
        cells += ["-" if math.isnan(r[m]) else
                  f"{r[m]:.3f} +- {r[f'{m}_std']:.3f} [{r[f'{m}_lo']:.3f}, {r[f'{m}_hi']:.3f}]"
                  for m in metrics]
        lines.append("| " + " | ".join(cells) + " |")
    failed = [j for j in jobs if j.status != "ok"]
    if failed:
        lines += ["", f"## Failed jobs ({len(failed)})", ""]
        lines += [f"- `{j.path.name}` ({j.status}): {j.error}" for j in failed]
    return "\n".join(lines) + "\n"
