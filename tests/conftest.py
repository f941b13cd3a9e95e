"""Shared fixtures: small real scenes (no mocks)."""

from __future__ import annotations

import gymnasium as gym
import pytest

import sim  # noqa: F401  (headless rendering + env registration)


def pytest_collection_modifyitems(items):
    """tests/apps (commands run as subprocesses: the long files) first, those with the most
    `slow` tests leading; stable otherwise. Under `make test`'s pytest-xdist each file goes to
    one worker, so the long files start at once and the short ones fill the end."""
    slow: dict[str, int] = {}
    for item in items:
        slow[str(item.path)] = slow.get(str(item.path), 0) + bool(item.get_closest_marker("slow"))
    items.sort(key=lambda item: (item.path.parent.name != "apps", -slow[str(item.path)]))


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
