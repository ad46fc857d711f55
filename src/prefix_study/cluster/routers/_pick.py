"""What routers share inside numba: Python's seeded random generator and
picking among ties.

The routers' draws must not depend on where they run, and the simulation
used Python's `random.Random(f"{router}:{seed}")` before it moved into
numba; `rng_state` takes that generator's Mersenne Twister state and the
functions below continue its stream draw for draw (randrange, random,
choices), so routing stays what it was.
"""

from __future__ import annotations

import random

import numpy as np

from prefix_study.replay.kernels._common import jit

_N, _M = 624, 397


def rng_state(name: str, seed: int) -> np.ndarray:
    """`random.Random(f"{name}:{seed}")`'s state: 624 words, then the position."""
    _, words, _ = random.Random(f"{name}:{seed}").getstate()
    return np.array(words, dtype=np.int64)


@jit
def _genrand_uint32(mt):
    i = mt[_N]
    if i >= _N:
        for k in range(_N):
            y = (mt[k] & 0x80000000) | (mt[(k + 1) % _N] & 0x7FFFFFFF)
            v = mt[(k + _M) % _N] ^ (y >> 1)
            if y & 1:
                v ^= 0x9908B0DF
            mt[k] = v
        i = 0
    y = mt[i]
    mt[_N] = i + 1
    y ^= y >> 11
    y ^= (y << 7) & 0x9D2C5680
    y ^= (y << 15) & 0xEFC60000
    y ^= y >> 18
    return y & 0xFFFFFFFF


@jit
def randrange(mt, n):
    """random.Random.randrange(n) for 0 < n < 2**32 (_randbelow_with_getrandbits)."""
    k = 0
    while (1 << k) <= n:
        k += 1
    r = _genrand_uint32(mt) >> (32 - k)
    while r >= n:
        r = _genrand_uint32(mt) >> (32 - k)
    return r


@jit
def random_float(mt):
    """random.Random.random()."""
    a = _genrand_uint32(mt) >> 5
    b = _genrand_uint32(mt) >> 6
    return (a * 67108864.0 + b) * (1.0 / 9007199254740992.0)


@jit
def choice_weighted(mt, weights):
    """random.Random.choices(range(len(weights)), weights=weights)[0]."""
    cum = np.cumsum(weights)  # itertools.accumulate: the same left-to-right sums
    x = random_float(mt) * (cum[-1] + 0.0)
    lo, hi = 0, weights.shape[0] - 1
    while lo < hi:  # bisect_right(cum, x, 0, hi)
        mid = (lo + hi) // 2
        if x < cum[mid]:
            hi = mid
        else:
            lo = mid + 1
    return lo


@jit
def argmin_random_ties(mt, values, ties):
    """The index of the smallest value; among ties one at random (ties: scratch)."""
    best = values.min()
    n = 0
    for r in range(values.shape[0]):
        if values[r] == best:
            ties[n] = r
            n += 1
    return ties[0] if n == 1 else ties[randrange(mt, n)]


@jit
def argmax_random_ties(mt, values, ties):
    best = values.max()
    n = 0
    for r in range(values.shape[0]):
        if values[r] == best:
            ties[n] = r
            n += 1
    return ties[0] if n == 1 else ties[randrange(mt, n)]


@jit
def overrode_affinity(overlaps, chosen):
    """1 if a longer prefix match than the chosen replica's existed, else 0."""
    return 1 if overlaps[chosen] < overlaps.max() else 0
