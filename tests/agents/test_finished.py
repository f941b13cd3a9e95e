"""agents.finished: which run directories hold a finished run of a config, and resume=auto."""

from __future__ import annotations

import json

import pytest
from omegaconf import OmegaConf

from agents.finished import config_digest, finished_metrics, relevant_config, resume_flag
from roadsight.errors import ConfigError
from tests.configs import compose_app


@pytest.fixture(scope="module")
def cfg():
    return compose_app("train", ["seed=3"])


def finish(out, cfg, status="ok", metrics=None):
    out.mkdir(parents=True, exist_ok=True)
    (out / "run.json").write_text(json.dumps({"status": status, "end": "then",
                                              "config_sha256": config_digest(cfg)}))
    if metrics is not None:
        (out / "metrics.json").write_text(json.dumps(metrics))


def test_a_finished_run_of_the_same_config_returns_its_metrics(tmp_path, cfg):
    finish(tmp_path, cfg, metrics={"return_mean": 4.5})
    assert finished_metrics(cfg, tmp_path) == {"return_mean": 4.5}
    other = cfg.copy()
    other.device, other.progress_bar, other.resume = "cuda", False, True  # no effect on results
    other.perception.placement, other.perception.backend = "main", "torch"  # nor these
    assert finished_metrics(other, tmp_path) == {"return_mean": 4.5}


@pytest.mark.parametrize("change", ["seed", "agent.gamma", "total_timesteps"])
def test_another_config_is_not_finished(tmp_path, cfg, change):
    finish(tmp_path, cfg, metrics={"return_mean": 4.5})
    other = cfg.copy()
    key, _, sub = change.partition(".")
    node = other[key] if sub else other
    node[sub or key] = node[sub or key] + 1
    assert finished_metrics(other, tmp_path) is None


def test_a_key_ignored_later_does_not_unfinish_a_run(tmp_path, cfg):
    """run.json keeps the run's config: its digest is recomputed with today's IGNORED_KEYS, so
    a run recorded before perception.backend was ignored (its stored digest counted it) stays
    finished; a stored config with another seed does not."""
    trained = OmegaConf.to_container(cfg, resolve=True)
    trained["perception"]["backend"] = "torch"  # composed "auto" today
    stale = "0" * 64  # the digest as counted then: matches nothing today
    run = {"status": "ok", "end": "then", "config_sha256": stale, "config": trained}
    (tmp_path / "run.json").write_text(json.dumps(run))
    (tmp_path / "metrics.json").write_text(json.dumps({"return_mean": 4.5}))
    assert finished_metrics(cfg, tmp_path) == {"return_mean": 4.5}
    assert "backend" not in relevant_config(trained)["perception"]
    assert trained["perception"]["backend"] == "torch"  # the caller's dict is left whole
    trained["seed"] += 1
    (tmp_path / "run.json").write_text(json.dumps(run))
    assert finished_metrics(cfg, tmp_path) is None
    del run["config"]  # an older run.json: only its stored digest counts
    (tmp_path / "run.json").write_text(json.dumps(run))
    assert finished_metrics(cfg, tmp_path) is None


def test_a_key_added_later_at_its_old_value_does_not_unfinish_a_run(tmp_path, cfg):
    """A run recorded before perception.detector and imitation.action_weights existed ran what
    their defaults give today: it stays finished; a config that sets either otherwise does not
    find it."""
    trained = OmegaConf.to_container(cfg, resolve=True)
    trained["perception"].pop("detector", None)
    trained.get("imitation", {}).pop("action_weights", None)
    run = {"status": "ok", "end": "then", "config_sha256": "0" * 64, "config": trained}
    (tmp_path / "run.json").write_text(json.dumps(run))
    (tmp_path / "metrics.json").write_text(json.dumps({"return_mean": 4.5}))
    assert cfg.perception.detector == "model" and cfg.imitation.action_weights is None
    assert finished_metrics(cfg, tmp_path) == {"return_mean": 4.5}
    for key, value in (("perception.detector", "truth"), ("imitation.action_weights", [1, 4])):
        other = cfg.copy()
        OmegaConf.update(other, key, value)
        assert finished_metrics(other, tmp_path) is None, key


def test_a_driver_evaluation_from_before_overtake_gain_stays_finished(tmp_path):
    """An IDM driver evaluation recorded before driver.overtake_gain existed drove as its
    default (null) does; the overtaking driver is another config."""
    evaluated = compose_app("eval", ["driver=idm", "skip_finished=true"])
    recorded = OmegaConf.to_container(evaluated, resolve=True)
    recorded["driver"].pop("overtake_gain")
    run = {"status": "ok", "end": "then", "config_sha256": "0" * 64, "config": recorded}
    (tmp_path / "run.json").write_text(json.dumps(run))
    (tmp_path / "metrics.json").write_text(json.dumps({"return_mean": 11.0}))
    assert finished_metrics(evaluated, tmp_path, "return_mean") == {"return_mean": 11.0}
    passing = evaluated.copy()
    passing.driver.overtake_gain = 0.2
    assert finished_metrics(passing, tmp_path, "return_mean") is None


def test_an_unfinished_run_is_not_finished(tmp_path, cfg):
    finish(tmp_path / "failed", cfg, status="failed", metrics={"return_mean": 1.0})
    finish(tmp_path / "no_metrics", cfg)
    finish(tmp_path / "other_metric", cfg, metrics={"crash_rate": 0.0})
    for name in ("failed", "no_metrics", "other_metric", "empty"):
        assert finished_metrics(cfg, tmp_path / name) is None, name


def test_resume_auto_follows_the_checkpoints(tmp_path):
    assert resume_flag("auto", tmp_path) is False
    assert resume_flag(True, tmp_path) is True and resume_flag(False, tmp_path) is False
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "dagger.pt").write_bytes(b"")  # imitation's rounds
    assert resume_flag("auto", tmp_path) is True
    (tmp_path / "checkpoints" / "dagger.pt").unlink()
    (tmp_path / "imitation_model.zip").write_bytes(b"")  # imitation done, no RL checkpoint yet
    assert resume_flag("auto", tmp_path) is True
    (tmp_path / "imitation_model.zip").unlink()
    assert resume_flag("auto", tmp_path) is False
    (tmp_path / "checkpoints" / "model_64_steps.zip").write_bytes(b"")
    assert resume_flag("auto", tmp_path) is True
    with pytest.raises(ConfigError, match="resume='yes': choose from true, false, auto"):
        resume_flag("yes", tmp_path)


def test_a_shield_is_part_of_the_config(tmp_path, cfg):
    """No shield adds no key (runs finished before `shield` existed stay finished); a run
    behind a shield is another run."""
    assert "shield" not in cfg
    finish(tmp_path, cfg, metrics={"return_mean": 4.5})
    shielded = compose_app("train", ["seed=3", "shield=gap"])
    assert finished_metrics(shielded, tmp_path) is None


def test_a_shielded_evaluation_from_before_the_stopping_gap_stays_finished(tmp_path):
    """An evaluation behind shield=gap recorded before stopping_gap, lead_dec and
    cut_in_braking existed ran as their defaults do; shield=gap_rss is another run, the same
    as shield=gap with its three settings."""
    evaluated = compose_app("eval", ["driver=idm", "shield=gap", "skip_finished=true"])
    recorded = OmegaConf.to_container(evaluated, resolve=True)
    for key in ("stopping_gap", "lead_dec", "cut_in_braking"):
        recorded["shield"].pop(key)
    run = {"status": "ok", "end": "then", "config_sha256": "0" * 64, "config": recorded}
    (tmp_path / "run.json").write_text(json.dumps(run))
    (tmp_path / "metrics.json").write_text(json.dumps({"return_mean": 7.2}))
    assert finished_metrics(evaluated, tmp_path, "return_mean") == {"return_mean": 7.2}
    rss = compose_app("eval", ["driver=idm", "shield=gap_rss", "skip_finished=true"])
    assert finished_metrics(rss, tmp_path, "return_mean") is None
    by_hand = compose_app("eval", ["driver=idm", "shield=gap", "skip_finished=true",
                                   "shield.stopping_gap=true", "shield.cut_in_braking=2.0",
                                   "shield.least_change=true"])
    assert config_digest(rss) == config_digest(by_hand)
