"""`roadsight summarize sweep=DIR`: one table of a multirun's jobs (overrides -> metrics).

Writes DIR/summary.csv; its own run.json goes to the Hydra run dir (outputs/summarize/...), so a
mistyped sweep= is reported, not created.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import hydra
import yaml
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from roadsight.errors import UserInputError
from roadsight.io import RunRecord, atomic_write_bytes, check_writable
from roadsight.paths import CONF_DIR


def flatten(d: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in d.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten(value, f"{name}."))
        else:
            out[name] = value
    return out


def _job_order(name: str) -> tuple:
    """Hydra numbers jobs 0, 1, ..., 10: sort them as numbers, other names after, by name."""
    return (0, int(name), "") if name.isdigit() else (1, 0, name)


def collect(sweep_dir: str | Path, metrics: list[str]) -> list[dict]:
    """A row per job directory that holds metrics.json: its overrides and the chosen metrics."""
    sweep_dir = Path(sweep_dir)
    if not sweep_dir.is_dir():
        raise FileNotFoundError(f"sweep={sweep_dir}: no such directory")
    rows = []
    jobs = sorted(sweep_dir.glob("*/metrics.json"), key=lambda p: _job_order(p.parent.name))
    for metrics_file in jobs:
        job = metrics_file.parent
        overrides_file = job / ".hydra" / "overrides.yaml"
        overrides = yaml.safe_load(overrides_file.read_text()) if overrides_file.exists() else []
        values = flatten(json.loads(metrics_file.read_text()))
        missing = [m for m in metrics if m not in values]
        if missing:
            raise KeyError(f"{metrics_file}: no metric {missing}; it has {sorted(values)[:20]}")
        row = {"job": job.name, "overrides": " ".join(overrides)}
        row.update({m: values[m] for m in metrics})
        rows.append(row)
    if not rows:
        raise FileNotFoundError(f"sweep={sweep_dir}: no job directory with a metrics.json")
    return rows


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="summarize")
def main(cfg: DictConfig) -> None:
    run = RunRecord(check_writable(HydraConfig.get().runtime.output_dir), "summarize", None)
    with run.reporting():
        try:
            rows = collect(cfg.sweep, list(cfg.metrics))
        except (FileNotFoundError, KeyError) as e:  # a wrong sweep= or metrics=: bad input
            raise UserInputError(e.args[0]) from e
    table = Table(title=f"sweep {cfg.sweep}")
    for key in rows[0]:
        table.add_column(key, justify="left" if key in ("job", "overrides") else "right")
    for row in rows:
        # escape: overrides such as data=[a,b] are not rich markup
        table.add_row(
            *(f"{v:.3f}" if isinstance(v, float) else escape(str(v)) for v in row.values())
        )
    Console(width=200).print(table)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_bytes(Path(cfg.sweep) / "summary.csv", buf.getvalue().encode())
    run.finish("ok", jobs=len(rows))
