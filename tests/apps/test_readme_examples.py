"""Every `roadsight ...` example of the README's command sections runs as written, on tiny budgets.

Taken from the README up to "## Results": each `roadsight` line of a ```bash block, and each inline
`roadsight <command> ...` with arguments (the command table, the summarize line). Each runs in
a subprocess with its own arguments, where the budget keys below are made tiny, placeholders
(DIR, FILE, N, ...) point at what the earlier examples wrote, and outputs go under tmp_path. Only
the examples in NOT_RUN are skipped, each with its reason; an example the test cannot map (a new
placeholder) fails it.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
from pathlib import Path

import pytest

from roadsight.cli import COMMANDS
from roadsight.paths import REPO_ROOT
from tests.apps.test_record import ROADSIGHT

# budget keys made tiny (set when present, added when absent); the rest of a line runs as written
TINY: dict[str, dict[str, str]] = {
    "record": {"episodes": "1", "max_steps": "2"},
    "train-detector": {"epochs": "1", "detector": "tiny", "workers": "0", "batch_size": "4",
                       "precise_bn_batches": "1"},
    "detect": {"max_frames": "2"},
    "bench": {"sim.steps": "2", "sim.rounds": "1", "cameras.steps": "1",
              "cameras.envs": "[highway-fast-v0]", "detector.cameras": "[bev]",
              "detector.batches": "[1]", "detector.repeats": "1", "detector.env_steps": "1",
              "fairness.episodes": "1", "train.steps": "8", "train.n_envs": "[1]",
              "train.cases": "{kinematics:['observation=kinematics']}",
              "train.args": "['env=urban_crossing','agent=ppo','agent.n_steps=8','device=cpu']"},
    "eval": {"episodes": "1", "videos": "0", "n_boot": "0", "progress_bar": "false"},
    "train": {"total_timesteps": "16", "agent.n_steps": "16", "agent.batch_size": "16",
              "agent.n_epochs": "1", "n_envs": "1", "eval_episodes": "1", "eval_freq": "0",
              "checkpoint_freq": "0", "env.config.duration": "5", "progress_bar": "false",
              "seed": "0", "imitation.steps": "16", "imitation.epochs": "1"},
}
# examples a tiny budget cannot run, with where they are tested instead
NOT_RUN = {
    "roadsight val-detector checkpoint=FILE data=VAL write_thresholds=true":
        "needs a val split in which every class is detected (a 2-frame recording and a 1-epoch "
        "detector have none, and the command then refuses, rightly); "
        "tests/perception/test_provenance.py stores and uses the thresholds",
}
# keys replaced only where an example sets them: a GPU cluster's job made to fit this machine's
# one-node SLURM (scripts/slurm-up), an Optuna study made one trial
WHERE_GIVEN = {"hydra.launcher.partition": "debug", "hydra.launcher.gpus_per_task": "null",
               "hydra.launcher.cpus_per_task": "1", "hydra.launcher.mem_gb": "1",
               "device": "cpu", "hydra.sweeper.n_trials": "1"}
# run order: an example's placeholders point at what an earlier one wrote
ORDER = ["--help", "record", "train-detector", "val-detector", "detect", "export", "train",
         "summarize", "bench"]


def readme_examples() -> list[str]:
    text = (REPO_ROOT / "README.md").read_text().split("\n## Results")[0]
    examples, in_bash = [], False
    for line in text.replace("\\\n", " ").splitlines():  # continued lines joined
        if line.strip().startswith("```"):
            in_bash = not in_bash and line.strip() == "```bash"
        elif in_bash and line.strip().startswith("roadsight "):
            examples.append(" ".join(line.split(" #")[0].split()))
    for span in re.findall(r"`(roadsight [^`]+)`", text):
        words = span.split()
        if words[1] == "--help" or (words[1] in COMMANDS and len(words) > 2):
            examples.append(span)
    return examples


def runnable(example: str, run_dir: Path, made: dict[str, Path]) -> list[str]:
    """The example's arguments with tiny budgets, placeholders filled, outputs in run_dir."""
    words = shlex.split(example)[1:]
    command = words[0]
    tiny = dict(TINY.get(command, {}))
    fill = {"DIR": made["sweep"] if command == "summarize" else made.get("dataset"),
            "VIDEO_OR_DIR": made.get("dataset", run_dir) / "images", "FILE": made.get("checkpoint"),
            "VAL": made.get("dataset"), "N": "1", "OUT": run_dir, "[...]": "[images,crashes]"}
    args = [command]
    for word in words[1:]:
        key, eq, value = word.partition("=")
        if eq and key in tiny:
            value = tiny.pop(key)
        elif eq and key in WHERE_GIVEN:
            value = WHERE_GIVEN[key]
        elif eq and command == "summarize" and key == "sweep":
            value = str(made["sweep"])
        elif eq and key in ("hydra.run.dir", "hydra.sweep.dir"):
            continue
        elif eq and value in fill:
            value = str(fill[value])
        elif eq and value.startswith("models/"):  # the repo's shipped files, from any directory
            value = str(REPO_ROOT / value)
        assert not (eq and re.fullmatch(r"[A-Z_]+", value)), f"{example}: unknown placeholder"
        args.append(f"{key}{eq}{value}")
    args += [f"{key}={value}" for key, value in tiny.items()]
    if command in COMMANDS:
        args += [f"hydra.run.dir={run_dir}", f"hydra.sweep.dir={run_dir}"]
    return args


@pytest.mark.slow
def test_readme_examples_run(tmp_path):
    examples = readme_examples()
    assert {e.split()[1] for e in examples} >= set(ORDER)  # the parser found them all
    assert set(NOT_RUN) <= set(examples)  # a skipped example is still in the README
    examples = [e for e in examples if e not in NOT_RUN]
    # commands without an entry in ORDER (newer ones) run last, in README order
    examples.sort(key=lambda e: ORDER.index(e.split()[1]) if e.split()[1] in ORDER else len(ORDER))
    made: dict[str, Path] = {}
    for i, example in enumerate(examples):
        run_dir = tmp_path / f"{i:02d}"
        args = runnable(example, run_dir, made)
        proc = subprocess.run([ROADSIGHT, *args], capture_output=True, text=True, timeout=300,
                              cwd=tmp_path)
        assert proc.returncode == 0, f"README: {example}\nran: {args}\n{proc.stderr[-3000:]}"
        if args[0] not in COMMANDS:
            continue
        records = [run_dir / "run.json"] if "-m" not in args else sorted(run_dir.glob("*/run.json"))
        assert records, f"README: {example}: no run.json in {run_dir}"
        for record in records:
            assert json.loads(record.read_text())["status"] == "ok", (example, record)
        if args[0] == "record":
            made.setdefault("dataset", run_dir)
        if "-m" in args:  # the latest multirun is what `summarize sweep=` reads
            made["sweep"] = run_dir
        if args[0] == "train-detector":
            made["checkpoint"] = run_dir / "best.pt"
