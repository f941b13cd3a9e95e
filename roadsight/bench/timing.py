"""Interleaved timing: every case runs once per round, so drift hits all cases alike."""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
from tqdm import tqdm


def interleaved_rates(
    cases: dict[str, Callable[[], int]], rounds: int, desc: str = "bench"
) -> dict[str, dict[str, float]]:
    """Run each `case()` (returning how many units it did) once per round, in turn.

    Returns per case the median rate over rounds (units/s), its min and max, and the units timed.
    """
    rates: dict[str, list[float]] = {name: [] for name in cases}
    units: dict[str, int] = {name: 0 for name in cases}
    with tqdm(total=rounds * len(cases), desc=desc, unit="case") as bar:
        for _ in range(rounds):
            for name, case in cases.items():
                start = time.perf_counter()
                n = case()
                rates[name].append(n / (time.perf_counter() - start))
                units[name] += n
                bar.update()
    return {
        name: {
            "rate": float(np.median(r)),
            "min": float(np.min(r)),
            "max": float(np.max(r)),
            "units": units[name],
        }
        for name, r in rates.items()
    }
