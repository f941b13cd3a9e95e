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


def write_job(root, name, overrides, metrics=None, run=None):
    d = root / name
    (d / ".hydra").mkdir(parents=True)
    (d / ".hydra" / "overrides.yaml").write_text("".join(f"- {o}\n" for o in overrides))
    if metrics is not None:
        (d / "metrics.json").write_text(json.dumps(metrics))
    (d / "run.json").write_text(json.dumps(run or {"status": "ok"}))


def test_seeds_are_grouped_and_failed_jobs_listed(tmp_path):
    from roadsight.summarize import write_summary

    returns = {("ppo", 0): 1.0, ("ppo", 1): 3.0, ("ppo", 2): 5.0, ("dqn", 0): 2.0}
    for k, ((agent, seed), r) in enumerate(returns.items()):
        quiet = ["progress_bar=false", "device=cpu", "resume=true", "perception.backend=torch"] \
            if k == 2 else []  # how it ran: same group
        write_job(tmp_path, f"{k}_agent={agent},seed={seed}",
                  [f"agent={agent}", f"seed={seed}", *quiet], {"return_mean": r, "crash_rate": 0.5})
    write_job(tmp_path, "4_agent=dqn,seed=1", ["agent=dqn", "seed=1"],
              run={"status": "failed", "error": "RuntimeError('boom')"})
    write_job(tmp_path, "idm", ["driver=idm"], {"return_mean": 4.0})  # no crash_rate: "-"
    write_summary(tmp_path, ["return_mean", "crash_rate"])
    rows = {r["overrides"]: r for r in csv.DictReader((tmp_path / "summary.csv").open())}
    assert set(rows) == {"agent=ppo", "agent=dqn", "driver=idm"}
    assert float(rows["driver=idm"]["return_mean"]) == 4.0
    assert rows["driver=idm"]["crash_rate"] == "nan"
    assert float(rows["agent=ppo"]["crash_rate"]) == 0.5
    assert "| `driver=idm` | 1 | 4.000 +- 0.000 [4.000, 4.000] | - |" in (
        tmp_path / "summary.md").read_text()
    ppo = rows["agent=ppo"]
    assert (int(ppo["n"]), int(ppo["failed"])) == (3, 0)
    assert float(ppo["return_mean"]) == pytest.approx(3.0)
    assert float(ppo["return_mean_std"]) == pytest.approx(2.0)
    assert 1.0 <= float(ppo["return_mean_lo"]) < 3.0 < float(ppo["return_mean_hi"]) <= 5.0
    assert (int(rows["agent=dqn"]["n"]), int(rows["agent=dqn"]["failed"])) == (1, 1)
    md = (tmp_path / "summary.md").read_text()
    assert "3.000 +- 2.000" in md and "RuntimeError('boom')" in md
    jobs = list(csv.DictReader((tmp_path / "jobs.csv").open()))
    assert len(jobs) == 6 and jobs[4]["status"] == "failed"
    assert (tmp_path / "summary_bars.png").stat().st_size > 0


def test_plot_labels_keep_only_the_overrides_that_differ():
    from roadsight.sweep_plots import short_labels

    groups = ["agent=ppo env=urban observation=kinematics",
              "agent=ppo env=urban observation=objects"]
    assert short_labels(groups) == {groups[0]: "observation=kinematics",
                                    groups[1]: "observation=objects"}
    assert short_labels(["agent=ppo"]) == {"agent=ppo": "agent=ppo"}  # one group: all of it
    assert short_labels(["a=1", "a=1"]) == {"a=1": "(none)"}


def test_curves_count_the_imitation_steps_a_run_used_first(tmp_path):
    """A DAgger-then-PPO run logs PPO from step 0; its curve starts after the imitation's steps,
    so it sits on one budget axis with runs that did not imitate."""
    from torch.utils.tensorboard import SummaryWriter

    from roadsight.sweep_plots import job_curves
    from roadsight.sweep_summary import Job

    jobs = {}
    for name, metrics in (("rl_only", {}), ("dagger", {"imitation.steps": 12288})):
        with SummaryWriter(tmp_path / name / "tb" / "run_1") as writer:
            for step, value in ((1024, 1.0), (2048, 2.5)):
                writer.add_scalar("eval/mean_reward", value, step)
            if metrics:  # the DAgger rounds' own curve, logged at the imitation's steps
                writer.add_scalar("imitation/crash_rate", 0.5, 12288)
        jobs[name] = job_curves(Job(tmp_path / name, [], "ok", metrics=metrics))
    assert jobs["rl_only"]["eval/mean_reward"].tolist() == [[1024, 1.0], [2048, 2.5]]
    assert jobs["dagger"]["eval/mean_reward"].tolist() == [[13312, 1.0], [14336, 2.5]]
    assert jobs["dagger"]["imitation/crash_rate"].tolist() == [[12288, 0.5]]
    assert "imitation/crash_rate" not in jobs["rl_only"]
    assert job_curves(Job(tmp_path / "no_tb", [], "ok")) == {}


def test_metrics_against_a_swept_key(tmp_path):
    from roadsight.errors import UserInputError
    from roadsight.summarize import write_summary
    from roadsight.sweep_plots import references_against, series_against

    crash = {("fog", 4): 0.6, ("fog", 0): 0.2, ("noise", 0): 0.2, ("noise", 4): 0.3}
    for k, ((name, severity), rate) in enumerate(crash.items()):
        write_job(tmp_path, str(k), [f"corruption.name={name}",
                                     f"corruption.severity={severity}", "run=models/x"],
                  {"crash_rate": rate, "return_mean": 1 - rate})
    write_job(tmp_path, "clean", ["run=models/x"], {"crash_rate": 0.1, "return_mean": 0.9})
    summary = write_summary(tmp_path, ["crash_rate", "return_mean"], x="corruption.severity")
    lines = series_against(summary["rows"], "corruption.severity")
    # the clean job is no point of a line but the level they are read against
    assert {rest: r["crash_rate"] for rest, r in
            references_against(summary["rows"], "corruption.severity").items()} == {
        "run=models/x": 0.1}
    assert {rest: [(x, r["crash_rate"]) for x, r in points] for rest, points in lines.items()} == {
        "corruption.name=fog run=models/x": [(0.0, 0.2), (4.0, 0.6)],
        "corruption.name=noise run=models/x": [(0.0, 0.2), (4.0, 0.3)]}
    assert (tmp_path / "summary_corruption.severity.png").stat().st_size > 0
    with pytest.raises(UserInputError, match=r"x=severity: no job of the sweep sets it; its "
                                             r"keys: corruption.name, corruption.severity, run"):
        series_against(summary["rows"], "severity")
    with pytest.raises(UserInputError, match=r"x=corruption.name: corruption.name=fog is not "
                                             r"a number"):
        series_against(summary["rows"], "corruption.name")
    proc = run_cli("summarize", f"sweep={tmp_path}", "x=seed", check=False)
    assert proc.returncode != 0 and "x=seed: no job of the sweep sets it" in proc.stderr


def test_a_named_summary_sits_beside_the_default_one(sweep):
    run_cli("summarize", f"sweep={sweep}", "metrics=[mAP50]")
    default = (sweep / "summary.md").read_text()
    run_cli("summarize", f"sweep={sweep}", "name=summary_vehicle",
            "metrics=[per_class.vehicle.AP50]")
    assert (sweep / "summary.md").read_text() == default  # the first table is left as it was
    named = (sweep / "summary_vehicle.md").read_text()
    assert "per_class.vehicle.AP50" in named and "| mAP50" not in named
    rows = list(csv.DictReader((sweep / "summary_vehicle.csv").open()))
    assert [float(r["per_class.vehicle.AP50"]) for r in rows] == pytest.approx([0.95, 0.45])
    jobs = list(csv.DictReader((sweep / "summary_vehicle_jobs.csv").open()))
    assert len(jobs) == 2 and "mAP50" not in jobs[0]
    assert "mAP50" in next(csv.DictReader((sweep / "jobs.csv").open()))
    assert (sweep / "summary_vehicle_bars.png").stat().st_size > 0


@pytest.mark.parametrize("name", ["../elsewhere", "sub/summary", ""])
def test_a_name_that_is_not_a_file_stem_is_refused(sweep, name):
    proc = run_cli("summarize", f"sweep={sweep}", f"name={name}", check=False)
    assert proc.returncode != 0 and f"name={name!r}: need a plain file name stem" in proc.stderr
    assert not list(sweep.parent.glob("elsewhere*")) and not (sweep / "sub").exists()
