"""Headless rendering for pygame (highway-env's renderer)."""

from __future__ import annotations

import logging
import os

log = logging.getLogger(__name__)


def ensure_headless_rendering() -> None:
    """Use SDL's offscreen driver when no driver is chosen.

    `dummy` is replaced too: highway-env's viewer sees it and draws nothing (black frames).
    """
    driver = os.environ.get("SDL_VIDEODRIVER")
    if driver is None:
        os.environ["SDL_VIDEODRIVER"] = "offscreen"
    elif driver == "dummy":
        log.warning("SDL's 'dummy' video driver makes highway-env draw nothing; using 'offscreen'")
        os.environ["SDL_VIDEODRIVER"] = "offscreen"
