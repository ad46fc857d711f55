"""The tier replay's loop: vLLM's prefix rule across GPU memory and the tiers
below it, written once and specialised per combination of policies.

Per request (accesses s..e-1 of an encoded trace), in order:
1. GPU memory serves it with its policy's `serve` under prefix semantics, as
   today's replay does: the GPU tier's state and hits do not depend on the
   tiers below (a loaded block is allocated in GPU memory like a computed
   one). Its prefix hits are g blocks.
2. Lookup: from block g on, each looked-up block is taken from the highest
   tier holding the chunk around it (a tier stores whole chunks of its
   `chunk` blocks, keyed by the id of the chunk's last block, which names the
   whole prefix); the first block no tier holds ends the found prefix.
3. Load policy: `always` loads all of it; `min_tokens` stops before the first
   tier whose run in this request is shorter than its min_load_tokens;
   `cost` loads up to the segment end where recompute time minus transfer
   time is largest, and nothing when no end gains (a segment is a run of blocks
   from one tier; transfer = the tier's latency once per request plus
   bytes / read bandwidth; recompute = the blocks' marginal prefill compute
   time; within a segment the gain is convex, so segment ends suffice).
   Everything after the loaded prefix is recomputed.
4. Writes, top tier down. write_through follows vLLM's OffloadingConnector
   and CPUOffloadingManager (vLLM 0.32) in two small traces of the tier's
   chunks (block semantics): (a) the store: the request offers the chunks of
   its looked-up blocks, from its first chunk when it loaded nothing (a
   GPU-hit chunk the tier lost is stored again), else from the chunk around
   block g on but those loaded from this tier (with one tier, vLLM's rule:
   the chunks after the loaded prefix); the offered chunks the tier holds
   come first (vLLM keeps them from this store's eviction), then the missing
   ones are stored; (b) the request's end: every chunk it loaded from or offered to
   the tier that the tier still holds, tail first, so the prefix head ends
   most recent (flags FINISH, and INSERTED on the chunks it stored:
   tiers/vllm_arc.py reads them). A loaded chunk is not touched before (b),
   so the store may evict it. The other write policies get one small trace:
   the chunks loaded from the tier (a touch), then the chunks they store that
   the tier does not hold: write_through_selective every chunk of the request
   whose last block has been served from cache at least write_hits times,
   write_back the units the tier above evicted in this request.

numba cannot cache a loop that takes jitted functions as arguments, so (as
replay/kernels/_serve.py does for one policy) `specialise` binds the policies'
functions as globals of copies of the templates below, cached next to this file.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Callable

import numpy as np

from prefix_study.config.schema import MAX_LOWER_TIERS
from prefix_study.replay.kernels._common import NOT_LOOKED_UP, REQUEST_START, jit
from prefix_study.replay.kernels._serve import _relocate
from prefix_study.replay.policies import get_policy
from prefix_study.tiers import vllm_arc
from prefix_study.tiers.spec import VLLM_ARC
from prefix_study.tiers.vllm_arc import FINISH, INSERTED

LOAD_CODES = {"always": 0, "min_tokens": 1, "cost": 2}
WRITE_CODES = {"write_through": 0, "write_through_selective": 1, "write_back": 2}
#: The policy that fills an unused lower-tier slot (capacity 0: never holds anything).
UNUSED = "lru"

_VERSION = hashlib.blake2b(Path(__file__).read_bytes(), digest_size=4).hexdigest()

# Templates: serve0/contains0 (GPU memory), serve1/contains1, serve2/contains2
# (the tiers below) and the helpers are globals bound by `specialise`.


def _contains_tier(t, st1, st2, x):  # pragma: no cover - numba
    if t == 1:
        return contains1(st1, x)  # noqa: F821
    return contains2(st2, x)  # noqa: F821


def _serve_tier(t, st1, st2, ids, flags, cost, category, n, hits, evicted):  # pragma: no cover - numba
    if t == 1:
        return serve1(st1, ids, flags, cost, category, 0, n, False, hits, evicted)  # noqa: F821
    return serve2(st2, ids, flags, cost, category, 0, n, False, hits, evicted)  # noqa: F821


def _loaded_from(t, last, c, g, m, src):  # pragma: no cover - numba
    """Whether the request loaded a block of the chunk ending at `last` from tier t."""
    for j in range(max(last - c + 1, g), min(last + 1, m)):
        if src[j] == t:
            return True
    return False


def _gather(idx, nm, ids, cost, category, mids, mflags, mcost, mcat):  # pragma: no cover - numba
    """The small trace of a tier's chunks (accesses idx[:nm] of the request)."""
    for q in range(nm):
        mids[q] = ids[idx[q]]
        mflags[q] = REQUEST_START if q == 0 else 0
        if mcost.shape[0] > 0:
            mcost[q] = cost[idx[q]]
        if mcat.shape[0] > 0:
            mcat[q] = category[idx[q]]


def _tier_request(st0, st1, st2, ids, flags, cost, category, r, s, e, recompute_s, par, scratch, out):  # pragma: no cover
    # One request (accesses s..e-1, request index r) through every tier.
    cap, chunk, wpol, whits, minload, rbw, lat, block_bytes, block_size, load_policy, ntiers = par
    (ev0, evt, evc, nev, idx, mids, mflags, mhits, mcost, mcat, src, cnt, used, hitcount, last_seen, stamp,
     stored) = scratch
    hits, served, recomputed, declined, read_bytes, written_chunks, load_s = out
    T = cap.shape[0]
    n = e - s
    for i in range(s, e):
        last_seen[ids[i]] = i
    # 1. GPU memory, as today's prefix replay.
    _, ne0 = serve0(st0, ids, flags, cost, category, s, e, True, hits, ev0)  # noqa: F821
    nev[0] = min(ne0, ev0.shape[0])
    L = 0
    while L < n and not (flags[s + L] & NOT_LOOKED_UP):
        L += 1
    g = 0
    while g < L and hits[s + g]:
        g += 1
    # 2. Lookup in the tiers below.
    k = g
    while k < L:
        found = 0
        stop = k
        for t in range(1, ntiers + 1):
            if cap[t] == 0:
                continue
            c = chunk[t]
            last = (k // c + 1) * c - 1
            if last >= n:
                continue
            if _contains_tier(t, st1, st2, ids[s + last]):  # noqa: F821
                found = t
                stop = min(last + 1, L)
                break
        if found == 0:
            break
        for j in range(k, stop):
            src[j] = found
        k = stop
    f_end = k
    # 3. Load policy.
    m = f_end
    if load_policy == 1:
        cnt[:] = 0
        for j in range(g, f_end):
            cnt[src[j]] += 1
        for j in range(g, f_end):
            if cnt[src[j]] * block_size < minload[src[j]]:
                m = j
                break
    elif load_policy == 2:
        used[:] = False
        best = 0.0
        m = g
        rec = 0.0
        tr = 0.0
        j = g
        while j < f_end:
            t = src[j]
            if not used[t]:
                used[t] = True
                tr += lat[t]
            rec += recompute_s[s + j]
            tr += block_bytes / rbw[t]
            j += 1
            if (j == f_end or src[j] != t) and rec - tr > best:
                best = rec - tr
                m = j
    served[r, 0] = g
    used[:] = False
    ls = 0.0
    for j in range(g, m):
        t = src[j]
        if not used[t]:
            used[t] = True
            ls += lat[t]
        served[r, t] += 1
        read_bytes[r, t] += block_bytes
        ls += block_bytes / rbw[t]
    load_s[r] = ls
    recomputed[r] = L - m
    declined[r] = f_end - m
    for j in range(m):
        hitcount[ids[s + j]] += 1
    # 4. Writes, top tier down.
    for t in range(1, ntiers + 1):
        nev[t] = 0
        if cap[t] == 0:
            continue
        c = chunk[t]
        tag = r * T + t
        nm = 0
        nw = 0
        j0 = 0
        if wpol[t] == 0:
            # vLLM's OffloadingConnector: a request that loaded nothing
            # offers every chunk from its first (a GPU-hit chunk the tier
            # lost is stored again); one that loaded offers the chunks
            # from its GPU prefix on but those loaded from this tier
            # (vLLM, one tier: the chunks after the loaded prefix); only
            # chunks of looked-up blocks (`offload_prompt_only`: no
            # output block is stored). Offered chunks the tier holds are
            # touched first (vLLM keeps them from the eviction), then the
            # missing ones stored; loaded chunks keep their recency (and
            # may be evicted) until the request's touches below.
            j0 = 0 if m == g else (g // c) * c
            for phase in range(2):
                for last in range(j0 + c - 1, L, c):
                    x = ids[s + last]
                    if stamp[x] == tag or _loaded_from(t, last, c, g, m, src) \
                            or _contains_tier(t, st1, st2, x) != (phase == 0):  # noqa: F821
                        continue
                    stamp[x] = tag
                    stored[x] = tag if phase == 1 else -1
                    idx[nm] = s + last
                    nm += 1
                    nw += phase
        else:
            for j in range(g, m):
                if src[j] == t:
                    last = (j // c + 1) * c - 1
                    x = ids[s + last]
                    if stamp[x] != tag:
                        stamp[x] = tag
                        idx[nm] = s + last
                        nm += 1
        if wpol[t] == 2:
            for q in range(nev[t - 1]):
                x = ev0[q] if t == 1 else evt[t - 1, q]
                if stamp[x] == tag or _contains_tier(t, st1, st2, x):  # noqa: F821
                    continue
                stamp[x] = tag
                idx[nm] = last_seen[x]
                nm += 1
                nw += 1
        elif wpol[t] == 1:
            for last in range(c - 1, n, c):
                x = ids[s + last]
                if stamp[x] == tag or hitcount[x] < whits[t] or _contains_tier(t, st1, st2, x):  # noqa: F821
                    continue
                stamp[x] = tag
                idx[nm] = s + last
                nm += 1
                nw += 1
        written_chunks[r, t] = nw
        if nm > 0:
            _gather(idx, nm, ids, cost, category, mids, mflags, mcost, mcat)
            _, ne = _serve_tier(t, st1, st2, mids, mflags, mcost, mcat, nm, mhits, evt[t])  # noqa: F821
            nev[t] = min(ne, evt.shape[1])
        if wpol[t] != 0:
            continue
        # The request's touches, as vLLM's CPU tier applies them when the
        # request finishes: every chunk it loaded from or offered to the
        # tier and the tier still holds, tail first (the head ends most
        # recent); flagged FINISH, and INSERTED when this request stored
        # it (tiers/vllm_arc.py reads both; the registry's policies read
        # no flag above BYPASS).
        wtag = tag
        tag = -2 - tag
        nm = 0
        for last in range((n // c) * c - 1, -1, -c):
            take = (last - c + 1 >= j0 and last < L) or _loaded_from(t, last, c, g, m, src)
            x = ids[s + last]
            if not take or stamp[x] == tag or not _contains_tier(t, st1, st2, x):  # noqa: F821
                continue
            stamp[x] = tag
            idx[nm] = s + last
            nm += 1
        if nm > 0:
            _gather(idx, nm, ids, cost, category, mids, mflags, mcost, mcat)
            for q in range(nm):
                mflags[q] |= FINISH | (INSERTED if stored[mids[q]] == wtag else 0)
            _serve_tier(t, st1, st2, mids, mflags, mcost, mcat, nm, mhits, evc)  # noqa: F821


def _tier_loop(st0, st1, st2, ids, flags, cost, category, starts, recompute_s, par, scratch, out):  # pragma: no cover
    # Every request of a trace, in order (the single-instance tier replay).
    for r in range(starts.shape[0] - 1):
        _tier_request(st0, st1, st2, ids, flags, cost, category, r, starts[r], starts[r + 1],  # noqa: F821
                      recompute_s, par, scratch, out)
    return out[0]


def _tier_serve_and_look(states0, states1, states2, i0, i1, i2, ids, flags, cost, category, r, s, e, recompute_s,
                         par, scratch, out, s2, e2, seen, sizes):  # pragma: no cover
    # A cluster's one call per request (as the policies' _serve_and_look):
    # replica i0 (none if < 0) serves request r (accesses s..e-1) with its GPU
    # state states0[i0] and the lower tiers' states1[i1], states2[i2] (a
    # shared tier: one state, index 0); then every replica reports the
    # leading looked-up blocks of the request at s2..e2-1 its GPU memory
    # holds (seen) and the blocks it holds (sizes, registers[0]).
    h = 0
    if i0 >= 0:
        _tier_request(states0[i0], states1[i1], states2[i2], ids, flags, cost, category, r, s, e,  # noqa: F821
                      recompute_s, par, scratch, out)
        served = out[1]
        for t in range(served.shape[1]):
            h += served[r, t]
    for q in range(len(states0)):
        st = states0[q]
        k = s2
        while k < e2 and not (flags[k] & NOT_LOOKED_UP) and contains0(st, ids[k]):  # noqa: F821
            k += 1
        seen[q] = k - s2
        sizes[q] = st[0][0]
    return h


@jit
def scratch(max_request_blocks, num_tiers, num_ids, has_ctx, has_category):
    """Work arrays of `_tier_request` for requests of up to max_request_blocks
    blocks over num_ids distinct ids (one set per GPU replica: hitcount is
    the replica's count of blocks served from cache)."""
    maxn = max(1, max_request_blocks)
    M = 4 * maxn + 2
    return (np.empty(2 * maxn + 1, dtype=np.int32),              # ev0: GPU evictions
            np.empty((num_tiers, 2 * M + 1), dtype=np.int32),    # evt: each tier's evictions
            np.empty(2 * M + 1, dtype=np.int32),                 # evc: evictions of the end-of-request touches
            np.zeros(num_tiers, dtype=np.int64),                 # nev
            np.empty(M, dtype=np.int64),                         # idx
            np.empty(M, dtype=np.int32),                         # mids
            np.zeros(M, dtype=np.uint8),                         # mflags
            np.zeros(M, dtype=np.bool_),                         # mhits
            np.empty(M if has_ctx else 0, dtype=np.float64),     # mcost
            np.empty(M if has_category else 0, dtype=np.int32),  # mcat
            np.zeros(maxn, dtype=np.int64),                      # src
            np.zeros(num_tiers, dtype=np.int64),                 # cnt
            np.zeros(num_tiers, dtype=np.bool_),                 # used
            np.zeros(num_ids, dtype=np.int64),                   # hitcount
            np.zeros(num_ids, dtype=np.int64),                   # last_seen
            np.full(num_ids, -1, dtype=np.int64),                # stamp
            np.full(num_ids, -1, dtype=np.int64))                # stored: tag of the request that stored a chunk


def tier_policy(name: str):
    """A lower tier's policy: a registered online policy, or vLLM's CPU-tier
    ARC (tiers/vllm_arc.py, a lower-tier policy only)."""
    return vllm_arc.POLICY if name == VLLM_ARC else get_policy(name)


def _machine(policy: str):
    return tier_policy(policy).state_machine("block")


@dataclass(frozen=True)
class TierLoops:
    """The specialised entries: `loop` replays a whole trace (tier_replay),
    `serve_and_look` one request on a cluster replica, then the next
    request's lookup in every replica (cluster/tiered.py); numba compiles
    each on its first call only."""

    loop: Callable
    serve_and_look: Callable


@lru_cache(maxsize=None)
def specialise(gpu_policy: str, lower: tuple[str, ...]):
    """The tier loop for GPU memory under `gpu_policy` (its prefix state
    machine) and the lower tiers' policies (block semantics; unused slots: UNUSED)."""
    if len(lower) > MAX_LOWER_TIERS:
        raise ValueError(f"at most {MAX_LOWER_TIERS} tiers below GPU memory, got {len(lower)}")
    padded = tuple(lower) + (UNUSED,) * (MAX_LOWER_TIERS - len(lower))
    gpu = get_policy(gpu_policy).state_machine("prefix")
    m1, m2 = (_machine(p) for p in padded)
    bindings = {"serve0": gpu.serve, "contains0": gpu.contains, "serve1": m1.serve, "contains1": m1.contains,
                "serve2": m2.serve, "contains2": m2.contains}
    # numba keys a cached loop on this file alone: the name also carries the
    # sources of the policies it calls (their code is in its cache entry), so
    # editing one recompiles the loop.
    sources = sorted({m.serve.py_func.__code__.co_filename for m in (gpu, m1, m2)})
    callees = hashlib.blake2b(b"".join(Path(f).read_bytes() for f in sources), digest_size=4).hexdigest()
    base = f"tiers_{gpu_policy}_{'_'.join(padded)}_{_VERSION}{callees}"
    here = __file__
    bindings["_contains_tier"] = _relocate(_contains_tier, bindings, here, f"{base}_contains")
    bindings["_serve_tier"] = _relocate(_serve_tier, bindings, here, f"{base}_serve")
    bindings["_gather"] = _relocate(_gather, bindings, here, f"{base}_gather")
    bindings["_loaded_from"] = _relocate(_loaded_from, bindings, here, f"{base}_loaded_from")
    bindings["_tier_request"] = _relocate(_tier_request, bindings, here, f"{base}_request")
    return TierLoops(loop=_relocate(_tier_loop, bindings, here, f"{base}_loop"),
                     serve_and_look=_relocate(_tier_serve_and_look, bindings, here, f"{base}_serve_and_look"))
