"""The shipped reference policies (models/<env>-objects, issue #24) load as `roadsight eval
run=...` reads them, and act on their own object list."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hydra.utils import instantiate

from agents.eval_setup import checkpoint_path, run_config
from roadsight.paths import REPO_ROOT

SHIPPED = ["highway_hazards-objects", "urban_crossing-objects"]


def test_both_reference_policies_are_shipped():
    assert sorted(p.name for p in (REPO_ROOT / "models").glob("*-objects")) == SHIPPED


@pytest.mark.parametrize("name", SHIPPED)
def test_a_reference_policy_loads_and_acts_on_its_object_list(name):
    run = REPO_ROOT / "models" / name
    cfg, camera = run_config(run)
    assert (cfg.observation.name, camera) == ("objects", "bev")
    layout = instantiate(cfg.observation.layout)
    stored = json.loads((run / "observation.json").read_text())
    assert tuple(stored["shape"]) == layout.shape and stored["observation"] == "objects"
    algorithm = instantiate(cfg.agent).func
    for checkpoint in ("best", "last"):
        model = algorithm.load(checkpoint_path(run, checkpoint), device="cpu")
        assert model.observation_space.shape == layout.shape
        actions, _ = model.predict(np.zeros((4, *layout.shape), np.float32), deterministic=True)
        assert actions.shape == (4,) and set(actions.tolist()) <= set(range(model.action_space.n))
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["episodes"] == 30 and metrics["seeds"] == [10000, 10029]
    assert not (run / "checkpoints").exists() and not (run / "detector.onnx").exists()
