"""Shared fixtures: small real scenes (no mocks)."""

from __future__ import annotations

import gymnasium as gym
import pytest

import sim  # noqa: F401  (headless rendering + env registration)

QUIET_URBAN = {"vehicles_count": 0, "pedestrians_count": 0, "obstacles_count": 0}


@pytest.fixture
def make_urban():
    """Factory for urban-crossing-v0 envs with config overrides; closes them afterwards."""
    envs = []

    def _make(**config):
        env = gym.make("roadsight/urban-crossing-v0", config=config)
        envs.append(env)
        return env

    yield _make
    for env in envs:
        env.close()
