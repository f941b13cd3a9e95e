"""Overrides checked before Hydra: one line naming the key and the nearest valid ones."""

from __future__ import annotations

import subprocess
import sys

from roadsight.overrides import check_overrides, config_groups, unknown_choice, unknown_env_key


def test_unknown_env_key_without_plus_names_the_nearest_keys():
    problem = unknown_env_key(["env.config.pedestrain_count=40"], "record")
    assert problem is not None
    assert problem.startswith("env.config.pedestrain_count: env=urban_crossing has no such key")
    assert "did you mean pedestrians_count" in problem


def test_known_env_keys_and_nested_keys_pass():
    argv = ["env.config.jaywalk_rate=0.3", "env.config.action.target_speeds=[0,5]", "seed=1"]
    assert check_overrides(argv, "record") is None


def test_env_key_checked_against_the_env_chosen_on_the_command_line():
    # jaywalk_rate is urban_crossing's: under highway_hazards it is a typo-like unknown key
    assert unknown_env_key(["env.config.jaywalk_rate=0.3"], "record") is None
    problem = unknown_env_key(["env=highway_hazards", "env.config.jaywalk_rate=0.3"], "record")
    assert problem is not None and "env=highway_hazards" in problem
    # each env of a sweep is checked
    assert unknown_env_key(["env=urban_crossing,merge", "env.config.jaywalk_rate=0.3"],
                           "record") is not None


def test_plus_prefixed_keys_are_left_to_make_env():
    assert unknown_env_key(["+env.config.pedestrain_count=40"], "record") is None


def test_unknown_group_option_lists_the_choices():
    assert "driver" in config_groups() and "env" in config_groups()
    problem = unknown_choice(["driver=idm,foo"])
    assert problem == "driver=foo: no such option; choose from idm, random"
    assert unknown_choice(["driver=idm", "camera=front"]) is None


def test_cli_reports_one_line_and_exits_nonzero(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "roadsight.cli", "record", "env.config.pedestrain_count=4",
         f"hydra.run.dir={tmp_path}/out"],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert lines == [lines[0]] and lines[0].startswith("roadsight record: env.config.pedestrain")
    assert not (tmp_path / "out").exists()  # nothing written


def test_an_override_hydra_cannot_parse_is_one_line_with_the_quoting_hint():
    run = "run=results/urban_crossing/0_observation=objects,seed=0"
    assert check_overrides([run, "episodes=1"], "eval") == (
        f"{run}: not a Hydra override (a value holding '=' goes in quotes: "
        "run='results/urban_crossing/0_observation=objects,seed=0')")
    assert check_overrides(["seed={a"], "train").startswith("seed={a: not a Hydra override (")
    # quoted, swept, dict-valued and flag arguments pass
    assert check_overrides(["-m", "run='a/b=c,d'", "seed=0,1", "--cfg",
                            "run_overrides={observation.tracker.min_hits:1}"], "eval") is None
