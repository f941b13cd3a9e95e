"""`roadsight bench` suites train and gpu with tiny budgets (real urban-crossing scenes)."""

from __future__ import annotations

import json
import time

import pytest
import torch
from omegaconf import OmegaConf

from roadsight.bench.gpu import run_gpu_suite
from roadsight.bench.train_speed import run_train_suite
from roadsight.errors import ConfigError
from tests.apps.test_record import run_cli
from tests.configs import compose_app

# one rollout of 4 steps per update: 8 timed steps are 2 rollouts and 2 updates
TINY = ["env=urban_crossing", "agent=ppo", "agent.n_steps=4", "agent.batch_size=4",
        "agent.n_epochs=1", "device=cpu", "env.config.duration=5"]


def bench_section(name: str) -> dict:
    """`name`'s section of conf/bench.yaml, as `roadsight bench` passes it to the suite."""
    cfg = compose_app("bench")
    return OmegaConf.to_container(cfg[name], resolve=True)


def test_train_suite_rates_and_ratios_to_kinematics(monkeypatch):
    import roadsight.bench.train_speed as train_speed

    setup = []  # seconds spent building and warming up each case (not timed by the suite)
    build = train_speed.training_case

    def timed_build(*args, **kwargs):
        t0 = time.perf_counter()
        run = build(*args, **kwargs)
        setup.append(time.perf_counter() - t0)
        return run

    monkeypatch.setattr(train_speed, "training_case", timed_build)
    section = bench_section("train")
    cases = {k: section["cases"][k] for k in ("kinematics", "objects-bev")}
    start = time.perf_counter()
    result = run_train_suite(cases, n_envs=[1], steps=8, rounds=1, args=TINY,
                             target=section["target"], seed=0)
    wall = time.perf_counter() - start - sum(setup)  # the suite's time outside case set-up
    assert len(setup) == 2
    rows = {r["case"]: r for r in result["rows"]}
    assert set(rows) == {"kinematics n_envs=1", "objects-bev n_envs=1"}
    assert all(set(r) == {"case", "observation", "n_envs", "steps_per_s", "min", "max", "steps",
                          "vs_kinematics"} for r in rows.values())
    assert rows["kinematics n_envs=1"]["vs_kinematics"] == 1.0
    objects = rows["objects-bev n_envs=1"]
    assert objects["vs_kinematics"] == pytest.approx(
        objects["steps_per_s"] / rows["kinematics n_envs=1"]["steps_per_s"])
    # exactly the steps asked for, timed inside the call: steps / rate is seconds that the call
    # spent (a rate per rollout, or in s/step, or one that counted the warm-up would not fit)
    assert all(r["steps"] == 8 for r in rows.values())
    assert sum(r["steps"] / r["steps_per_s"] for r in rows.values()) < wall
    assert sum(r["steps"] / r["steps_per_s"] for r in rows.values()) > 0.2 * wall
    # the target (objects-bev at n_envs=2) was not measured here, and says so
    assert result["target"]["status"] == "not measured"
    assert "not measured" in result["notes"][0]


def test_train_suite_refuses_steps_that_are_not_whole_rollouts():
    wrong = r"train\.cases\.kinematics: steps=6 .* not a multiple of the 4 steps"
    with pytest.raises(ConfigError, match=wrong):
        run_train_suite({"kinematics": ["observation=kinematics"]}, n_envs=[1], steps=6,
                        rounds=1, args=TINY, target={}, seed=0)
    with pytest.raises(ConfigError, match="need a case named 'kinematics'"):
        run_train_suite({"pixels": ["observation=pixels"]}, n_envs=[1], steps=8, rounds=1,
                        args=TINY, target={}, seed=0)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the skip where there is no GPU")
def test_gpu_suite_says_it_was_skipped(tmp_path):
    out = run_cli("bench", "suites=[gpu]", f"hydra.run.dir={tmp_path}").stdout
    assert "suite gpu skipped: no CUDA device" in out
    result = json.loads((tmp_path / "metrics.json").read_text())
    assert result["suites"]["gpu"] == {"suite": "gpu", "skipped": "no CUDA device"}


def test_gpu_suite_code_path_on_the_cpu():
    """device=cpu runs what a GPU machine runs (detector batches, training device vs cpu)."""
    section = bench_section("gpu")
    section.update(device="cpu", batches=[2], repeats=1, steps=4, rounds=1,
                   args=[*TINY, "n_envs=1"], cases={"kinematics": section["cases"]["kinematics"]})
    rows = run_gpu_suite(**section, seed=0)["rows"]
    assert [r["case"] for r in rows] == ["detector bev 512x256 cpu b2", "train kinematics cpu"]
    assert rows[1]["vs_cpu"] == 1.0
    assert rows[0]["per_s"] == pytest.approx(2 * 1000 / rows[0]["ms_per_call"])  # frames, not calls
    assert rows[1]["per_s"] > 0


def test_every_train_case_composes_and_its_detector_fits_its_camera():
    """A case of conf/bench.yaml that names a detector checkpoint (the tiny bev one) names a
    shipped file trained for that case's camera, whose per-class thresholds were stored."""
    from perception.checkpoint import load_checkpoint
    from roadsight.bench.train_speed import train_config
    from roadsight.paths import REPO_ROOT

    section = bench_section("train")
    named = 0
    for key, overrides in section["cases"].items():
        cfg, camera = train_config([*section["args"], *overrides], f"train.cases.{key}")
        if cfg.perception.checkpoint is None:
            continue
        state = load_checkpoint(REPO_ROOT / cfg.perception.checkpoint)
        assert state["camera"]["name"] == camera, key
        assert set(state["score_thresh"]) == {"vehicle", "pedestrian", "obstacle"}, key
        named += 1
    assert named >= 1  # objects-bev-tiny
