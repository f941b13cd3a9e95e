"""perception/ metrics of observation=objects on a real urban-crossing drive with stand-in
detectors whose answers are known."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from stable_baselines3.common.logger import Logger

from agents.build import build_env
from agents.perceive import TruthDetections
from agents.perception_metrics import PerceptionMetrics
from perception.decode import Detections
from tests.agents.test_build import config


class EveryOther(TruthDetections):
    """The true boxes with every other one dropped."""

    def __call__(self, images, objects):
        return [Detections(d.boxes[::2], d.cls[::2], d.score[::2])
                for d in super().__call__(images, objects)]


class Shifted(TruthDetections):
    """The true boxes moved 60 px to the right: 6 m off in bev, beyond the matching gate."""

    def __call__(self, images, objects):
        return [Detections(d.boxes + np.float32([60, 0, 60, 0]), d.cls, d.score)
                for d in super().__call__(images, objects)]


def drive(source, steps: int = 25) -> dict:
    """The PerceptionMetrics callback's record after `steps` steps with the detector `source`."""
    cfg = config("observation=objects", "n_envs=1", "env.config.duration=20")
    venv = build_env(cfg, 1, SimpleNamespace(source=source))
    try:
        venv.seed(5)
        venv.reset()
        for _ in range(steps):
            venv.step(np.array([1]))
        logger = Logger(None, [])
        callback = PerceptionMetrics(window=steps)
        callback.init_callback(SimpleNamespace(get_env=lambda: venv, logger=logger))
        callback.on_rollout_end()
        assert venv.counters.frames == 0  # a new window starts
        return {k.removeprefix("perception/"): v for k, v in logger.name_to_value.items()}
    finally:
        venv.close()


@pytest.mark.parametrize(("source", "recall", "precision"), [
    (TruthDetections(0.3), (1.0, 1.0), (1.0, 1.0)),
    (EveryOther(0.3), (0.4, 0.65), (1.0, 1.0)),
    (Shifted(0.3), (0.0, 0.1), (0.0, 0.1)),  # a neighbour may sit where a box moved to
])
def test_recall_precision_and_id_switches(source, recall, precision):
    m = drive(source)
    assert m["frames"] == 26  # the reset frame and 25 steps
    assert recall[0] <= m["recall"] <= recall[1], m
    assert precision[0] <= m["precision"] <= precision[1], m
    if type(source) is TruthDetections:
        assert m["id_switches"] == 0, m


def test_a_track_that_changes_id_is_counted():
    from agents.perception_metrics import PerceptionCounters
    from sim.types import ObjectTruth

    truth = [ObjectTruth(7, "pedestrian", (0, 0, 1, 1), 1.0, False, (10.0, 2.0), (0, 0), 0.0,
                         (0.5, 0.5))]
    track = lambda i: SimpleNamespace(track_id=i, cls=1, ego_xy=np.array([10.2, 2.0]))  # noqa
    counters = PerceptionCounters()
    for i, start in ((1, True), (1, False), (2, False), (2, False), (3, True)):
        counters.add_tracks(0, start, [track(i)], truth)
    assert counters.summary()["id_switches"] == 1  # 1 -> 2; a new episode's 3 is no switch
