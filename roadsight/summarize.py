"""`roadsight summarize sweep=DIR`: a multirun's jobs (train, eval, any command) grouped by their
overrides but the seed.

Writes into DIR: summary.csv (a row per group: n seeds, failed jobs, per metric mean, std and
95% bootstrap interval), jobs.csv (every job with its status and error), summary.md, and the
plots summary_bars.png, when jobs have TensorBoard logs summary_curves.png, and with `x=KEY`
summary_<KEY>.png (each metric against a numeric swept key, e.g. corruption.severity). With
`name=NAME` the files are NAME.csv, NAME_jobs.csv, NAME.md, NAME_bars.png, ...: a second table
of the same sweep (other metrics) beside the first. Failed jobs are listed with their error,
never dropped. Its own run.json goes to the Hydra run dir
(outputs/summarize/...), so a mistyped sweep= is reported, not created.
"""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from roadsight.errors import ConfigError, UserInputError
from roadsight.io import RunRecord, atomic_write_bytes, check_writable
from roadsight.paths import CONF_DIR
from roadsight.sweep_summary import (
    Job,
    check_metrics,
    collect_jobs,
    group_stats,
    markdown,
    numeric_metrics,
)


def collect(sweep_dir: str | Path, metrics: list[str]) -> list[Job]:
    """Every job of the sweep; FileNotFoundError / KeyError name a wrong sweep= or metric."""
    jobs = collect_jobs(sweep_dir)
    check_metrics(jobs, metrics)
    return jobs


def _csv(rows: list[dict]) -> bytes:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue().encode()


SUMMARY = "summary"  # the default name: summary.md, summary.csv, jobs.csv, summary_*.png


def check_name(name: str) -> str:
    """ConfigError naming `name=` unless it is a plain file stem (the files go into DIR)."""
    if not isinstance(name, str) or not name or Path(name).name != name or name in (".", ".."):
        raise ConfigError(f"name={name!r}: need a plain file name stem, e.g. summary_imitation "
                          f"(the files are written into the sweep directory)")
    return name


def write_summary(sweep: str | Path, metrics: list[str] | None = None,
                  x: str | None = None, name: str = SUMMARY) -> dict:
    """The summary files of `sweep`; `metrics` None: every numeric metric the jobs share;
    `x`: also plot the metrics against that swept key; `name`: the files' stem (see above)."""
    from roadsight.sweep_plots import plot_against, plot_bars, plot_curves

    sweep, name = Path(sweep), check_name(name)
    jobs = collect(sweep, metrics or [])
    metrics = list(metrics) if metrics else numeric_metrics(jobs)
    rows = group_stats(jobs, metrics)
    if x:  # first: a wrong key fails before any file is written
        plot_against(rows, x, metrics, sweep / f"{name}_{x}.png")
    job_rows = [{"job": j.path.relative_to(sweep).as_posix(), "overrides": " ".join(j.overrides),
                 "status": j.status, "error": j.error or "",
                 **{m: j.metrics.get(m, "") for m in metrics}} for j in jobs]
    atomic_write_bytes(sweep / f"{name}.csv", _csv(rows))
    atomic_write_bytes(sweep / ("jobs.csv" if name == SUMMARY else f"{name}_jobs.csv"),
                       _csv(job_rows))
    atomic_write_bytes(sweep / f"{name}.md", markdown(rows, jobs, metrics, str(sweep)).encode())
    plot_bars(rows, metrics, sweep / f"{name}_bars.png")
    plot_curves(jobs, sweep / f"{name}_curves.png")
    return {"rows": rows, "jobs": jobs, "metrics": metrics}


def print_table(summary: dict, sweep: str) -> None:
    table = Table(title=f"sweep {sweep}")
    metrics = summary["metrics"]
    for key in ("overrides", "n", "failed", *metrics):
        table.add_column(key, justify="left" if key == "overrides" else "right")
    for r in summary["rows"]:
        cells = ["-" if math.isnan(r[m]) else f"{r[m]:.3f} +- {r[f'{m}_std']:.3f}"
                 for m in metrics]
        # escape: overrides such as data=[a,b] are not rich markup
        table.add_row(escape(r["overrides"]), str(r["n"]), str(r["failed"]), *cells)
    console = Console(width=200)
    console.print(table)
    for job in summary["jobs"]:
        if job.status != "ok":
            console.print(f"failed: {escape(job.path.name)} ({job.status}): {escape(job.error)}")


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="summarize")
def main(cfg: DictConfig) -> None:
    run = RunRecord(check_writable(HydraConfig.get().runtime.output_dir), "summarize", None)
    with run.reporting():
        try:
            summary = write_summary(cfg.sweep, list(cfg.metrics) if cfg.metrics else None,
                                    cfg.x, cfg.name)
        except (FileNotFoundError, KeyError) as e:  # a wrong sweep= or metrics=: bad input
            raise UserInputError(e.args[0]) from e
    print_table(summary, cfg.sweep)
    failed = sum(j.status != "ok" for j in summary["jobs"])
    run.finish("ok", jobs=len(summary["jobs"]), failed=failed)
