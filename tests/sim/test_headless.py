"""Headless rendering: offscreen when unset, never the driver that draws black frames."""

from __future__ import annotations

import os

import pytest

from sim.headless import ensure_headless_rendering


@pytest.mark.parametrize(
    "before,after", [(None, "offscreen"), ("dummy", "offscreen"), ("x11", "x11")]
)
def test_video_driver_choice(monkeypatch, before, after):
    if before is None:
        monkeypatch.delenv("SDL_VIDEODRIVER", raising=False)
    else:
        monkeypatch.setenv("SDL_VIDEODRIVER", before)
    ensure_headless_rendering()

    assert os.environ["SDL_VIDEODRIVER"] == after
