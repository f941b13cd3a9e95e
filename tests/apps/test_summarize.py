"""`roadsight summarize` over a multirun directory laid out as Hydra writes it."""

from __future__ import annotations

import csv
import json

import pytest

from roadsight.summarize import collect
from tests.apps.test_record import run_cli


@pytest.fixture
def sweep(tmp_path):
    for job, (override, ap) in enumerate(
        [("corruption.severity=1", 0.9), ("corruption.severity=5", 0.4)]
    ):
        d = tmp_path / str(job)
        (d / ".hydra").mkdir(parents=True)
        (d / ".hydra" / "overrides.yaml").write_text(f"- {override}\n")
        (d / "metrics.json").write_text(
            json.dumps({"mAP50": ap, "per_class": {"vehicle": {"AP50": ap + 0.05}}})
        )
    return tmp_path


def test_summary_table_and_csv_follow_the_jobs(sweep):
    proc = run_cli("summarize", f"sweep={sweep}", "metrics=[mAP50,per_class.vehicle.AP50]")
    assert "corruption.severity=5" in proc.stdout
    rows = list(csv.DictReader((sweep / "summary.csv").open()))
    assert [(r["overrides"], float(r["mAP50"])) for r in rows] == [
        ("corruption.severity=1", 0.9),
        ("corruption.severity=5", 0.4),
    ]
    assert float(rows[1]["per_class.vehicle.AP50"]) == pytest.approx(0.45)


def test_missing_metric_or_sweep_is_named(sweep, tmp_path):
    with pytest.raises(KeyError, match="no metric.*mAP75"):
        collect(sweep, ["mAP75"])
    with pytest.raises(FileNotFoundError, match="no such directory"):
        collect(tmp_path / "nowhere", ["mAP50"])
