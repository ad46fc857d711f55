"""Arrival times: open-loop Poisson conversations, closed-loop turns.

New conversations arrive as a Poisson process (independent of how fast the
engine serves them). Within a conversation, turn k+1 is sent only after turn k
finished plus a think time; the stream records a nominal arrival assuming zero
service time together with the think time, and the engine driver re-times
later turns from the moment their previous turn actually finished.
"""

from __future__ import annotations

import math
import zlib
from typing import Any

import numpy as np

#: Independent random streams per workload, so changing one knob (say the
#: think time) does not reshuffle which conversations are chosen.
RNG_PURPOSES = ("select", "arrivals", "think_time", "assign")


def workload_rng(seed: int, workload: str, purpose: str) -> np.random.Generator:
    """A generator derived from the global seed, the workload name and a purpose."""
    if purpose not in RNG_PURPOSES:
        raise ValueError(f"unknown RNG purpose {purpose!r}; known: {RNG_PURPOSES}")
    entropy = [int(seed), zlib.crc32(workload.encode()), RNG_PURPOSES.index(purpose)]
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(entropy)))


def poisson_arrivals(rng: np.random.Generator, count: int, rate_per_s: float) -> np.ndarray:
    """Arrival times (s) of `count` events of a Poisson process with the given rate."""
    if rate_per_s <= 0:
        raise ValueError(f"arrival rate must be positive, got {rate_per_s}")
    gaps = rng.exponential(1.0 / rate_per_s, size=count)
    return np.cumsum(gaps)


def think_times(rng: np.random.Generator, count: int, think_time: Any) -> np.ndarray:
    """`count` think times (s) from `think_time` {distribution, mean_s, sigma}.

    lognormal uses mu = ln(mean_s) - sigma^2 / 2 so its mean is mean_s.
    """
    mean = float(think_time.mean_s)
    dist = think_time.distribution
    if dist not in ("exponential", "constant", "lognormal"):
        raise ValueError(f"unknown think-time distribution {dist!r}")
    if mean == 0.0:
        return np.zeros(count)
    if dist == "exponential":
        return rng.exponential(mean, size=count)
    if dist == "constant":
        return np.full(count, mean)
    sigma = float(think_time.sigma)
    return rng.lognormal(math.log(mean) - sigma * sigma / 2.0, sigma, size=count)
