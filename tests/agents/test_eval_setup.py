"""agents.eval_setup.apply_run_overrides: a what-if on a trained run's config."""

from __future__ import annotations

import pytest
from omegaconf import OmegaConf

from agents.eval_setup import apply_run_overrides
from roadsight.errors import ConfigError


def run_config():
    return OmegaConf.create({"perception": {"score_thresh": None, "topk": 100},
                             "observation": {"name": "objects", "tracker": {"min_hits": 2}},
                             "env": {"config": {"duration": 40}}})


def test_existing_keys_are_set_and_a_dict_replaces_a_null():
    cfg = run_config()
    apply_run_overrides(cfg, OmegaConf.create({
        "observation.tracker.min_hits": 1,
        "perception.score_thresh": {"vehicle": 0.5, "pedestrian": 0.2, "obstacle": 0.15}}), "RUN")
    assert cfg.observation.tracker.min_hits == 1
    assert OmegaConf.to_container(cfg.perception.score_thresh) == {
        "vehicle": 0.5, "pedestrian": 0.2, "obstacle": 0.15}
    assert cfg.perception.topk == 100 and cfg.env.config.duration == 40  # the rest untouched


@pytest.mark.parametrize(("key", "message"), [
    ("observation.tracker.min_hit", "run_overrides: observation.tracker.min_hit: not a key of "
                                    "RUN's config; observation.tracker holds min_hits"),
    ("observaton.tracker.min_hits", "observaton.tracker.min_hits: not a key of RUN's config; "
                                    "the top level holds perception, observation, env"),
    ("observation.tracker.min_hits.x", "min_hits.x: not a key of RUN's config; "
                                       "observation.tracker.min_hits holds no keys"),
    ("shield", "shield: not a key of RUN's config; the top level holds perception, observation, "
               "env"),
])
def test_a_key_the_run_does_not_hold_is_refused_naming_it(key, message):
    cfg = run_config()
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        apply_run_overrides(cfg, {key: 1}, "RUN")
    assert cfg == run_config()  # nothing changed


def test_not_a_dict_is_refused():
    with pytest.raises(ConfigError, match=r"run_overrides=3: give a dict of the run's config"):
        apply_run_overrides(run_config(), 3, "RUN")
