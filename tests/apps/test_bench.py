"""`roadsight bench` runs its suites with tiny budgets and reports consistent ratios."""

from __future__ import annotations

import json
import time

import pytest
from hydra.utils import instantiate

from perception.backends import input_hw
from perception.checkpoint import build_model, load_checkpoint, resolve_checkpoint
from tests.apps.test_record import run_cli


def _timed_run(*args: str) -> float:
    start = time.perf_counter()
    run_cli(*args)
    return time.perf_counter() - start


def test_sim_suite_reports_rates_and_ratios(tmp_path):
    wall = _timed_run("bench", "suites=[sim]", "sim.steps=3", "sim.rounds=1",
                      f"hydra.run.dir={tmp_path}")
    result = json.loads((tmp_path / "metrics.json").read_text())
    rows = {r["case"]: r for r in result["suites"]["sim"]["rows"]}
    assert set(rows) == set(SIM_RATES)
    assert rows["highway-fast-v0 (kinematics)"]["vs_highway_fast"] == 1.0
    # 3 steps of each case took part of the command's wall time: a rate in steps/s must say so
    # (a rate in s/step, or per round instead of per step, would not)
    assert sum(3 / r["steps_per_s"] for r in rows.values()) < wall
    assert all(r["min"] <= r["steps_per_s"] <= r["max"] for r in rows.values())
    assert result["machine"]["cores"] >= 1


# steps/s a fake timer reports per case, and the ratios they must give
SIM_RATES = {"highway-fast-v0 (kinematics)": 50.0, "urban-crossing-v0 (kinematics)": 20.0,
             "urban-crossing-v0 + bev": 5.0, "highway-hazards-v0 (kinematics)": 40.0,
             "highway-hazards-v0 + bev": 30.0, "highway-fast-v0 + bev": 10.0}
SIM_RATIOS = {  # case: (vs_highway_fast, vs_same_env_without_camera)
    "highway-fast-v0 (kinematics)": (1.0, None),
    "urban-crossing-v0 (kinematics)": (0.4, None),
    "urban-crossing-v0 + bev": (0.1, 0.25),
    "highway-hazards-v0 (kinematics)": (0.8, None),
    "highway-hazards-v0 + bev": (0.6, 0.75),
    "highway-fast-v0 + bev": (0.2, 0.2),
}


def test_sim_suite_ratios_of_known_rates(monkeypatch):
    from roadsight.bench import sim_speed

    def fake_rates(cases, rounds, desc=""):
        assert set(cases) == set(SIM_RATES)
        return {name: {"rate": SIM_RATES[name], "min": 0.0, "max": 99.0, "units": 3}
                for name in cases}

    monkeypatch.setattr(sim_speed, "interleaved_rates", fake_rates)
    bev = {"_target_": "sim.camera.bev.BevCamera", "width": 64, "height": 32}
    rows = sim_speed.run_sim_suite({"bev": bev}, steps=1, rounds=1, seed=0)["rows"]
    got = {r["case"]: tuple(None if v is None else round(v, 9) for v in
                            (r["vs_highway_fast"], r["vs_same_env_without_camera"])) for r in rows}
    assert got == SIM_RATIOS


def test_interleaved_rates_are_medians_of_units_per_second(monkeypatch):
    from roadsight.bench import timing

    clock = [0.0]
    monkeypatch.setattr(timing.time, "perf_counter", lambda: clock[0])
    durations = {"a": iter([1.0, 4.0, 2.0]), "b": iter([0.5, 0.5, 0.25])}  # [s] per round

    def case(name, units):
        def run():
            clock[0] += next(durations[name])
            return units
        return run

    rates = timing.interleaved_rates({"a": case("a", 8), "b": case("b", 1)}, rounds=3)
    assert rates["a"] == {"rate": 4.0, "min": 2.0, "max": 8.0, "units": 24}
    assert rates["b"] == {"rate": 2.0, "min": 2.0, "max": 4.0, "units": 3}


def test_unknown_suite_names_the_choices(tmp_path):
    proc = run_cli("bench", "suites=[gpu_magic]", f"hydra.run.dir={tmp_path}", check=False)
    assert proc.returncode != 0 and "unknown suite 'gpu_magic'" in proc.stderr
    assert "sim" in proc.stderr


def test_detector_suite_reports_latency_beside_an_env_step(tmp_path):
    wall = _timed_run(
        "bench",
        "suites=[detector]",
        "detector.repeats=1",
        "detector.env_steps=2",
        "detector.batches=[1,2]",
        "detector.cameras=[front]",
        f"hydra.run.dir={tmp_path}",
    )
    rows = {
        r["case"]: r
        for r in json.loads((tmp_path / "metrics.json").read_text())["suites"]["detector"]["rows"]
    }
    step = rows["highway-fast-v0 env step"]
    assert step["vs_highway_fast_step"] == 1.0 and step["ms_per_frame"] > 0
    # the shipped front checkpoint's own input size and output stride
    state = load_checkpoint(resolve_checkpoint(None, "front"))
    h, w = input_hw(instantiate(state["preprocess_cfg"]))
    case = f"front {w}x{h} stride {build_model(state).stride}"
    names = [f"{case} {engine} b{b}" for engine in ("torch", "torch+decode", "onnxruntime")
             for b in (1, 2)]
    assert set(rows) == {*names, "highway-fast-v0 env step"}
    # each timed call (4: 3 warm-up + 1 repeat) was part of the command's wall time
    assert sum(4 * rows[n]["ms_per_call"] for n in names) / 1000 < wall


def test_detector_suite_ratios_of_known_latencies(monkeypatch):
    from roadsight.bench import detector_latency

    def fake_latency(engine, input_hw, batch=1, repeats=20):
        return {1: {"ms_per_call": 8.0, "ms_per_frame": 8.0},
                2: {"ms_per_call": 14.0, "ms_per_frame": 7.0}}[batch]

    monkeypatch.setattr(detector_latency, "measure_latency", fake_latency)
    monkeypatch.setattr(detector_latency, "camera_cost", lambda *a: [{"ms": 4.0}])
    rows = detector_latency.run_detector_suite(["front"], {}, [1, 2], 1, 1, 0)["rows"]
    by_batch = {r["case"].split()[-1]: r for r in rows if " torch b" in r["case"]}
    # batch 1: 8 ms a frame, twice a 4 ms env step; batch 2: 14 ms a call, 7 a frame
    assert by_batch["b1"]["vs_highway_fast_step"] == pytest.approx(2.0)
    assert by_batch["b2"]["vs_highway_fast_step"] == pytest.approx(1.75)
    assert by_batch["b2"]["frames_per_s"] == pytest.approx(1000 / 7)
    assert rows[-1]["case"] == "highway-fast-v0 env step" and rows[-1]["ms_per_frame"] == 4.0


def test_measure_latency_is_the_median_call_per_frame(monkeypatch):

    from perception.backends import measure_latency

    clock, calls = [0.0], []
    monkeypatch.setattr(time, "perf_counter", lambda: clock[0])

    def backend(x):  # calls take 30, 10, 20 ms after the warm-up (which is not timed)
        calls.append(tuple(x.shape))
        clock[0] += [0.5, 0.5, 0.03, 0.01, 0.02][len(calls) - 1]

    r = measure_latency(backend, (8, 16), batch=4, repeats=3, warmup=2)
    assert calls == [(4, 3, 8, 16)] * 5
    assert r["ms_per_call"] == pytest.approx(20.0) and r["ms_per_frame"] == pytest.approx(5.0)
