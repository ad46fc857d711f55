"""`wa_prob`: the workload-aware eviction policy of Alibaba's ATC'25 study.

Wang et al., "KVCache Cache in the Wild: Characterizing and Optimizing
KVCache Cache at a Large Cloud Provider" (USENIX ATC'25,
https://arxiv.org/abs/2506.02634). The study finds that reuse is hard to
predict over all requests but predictable per request category (workload
type, and turn number for multi-turn chat): per category, the reuse
probability is stable and the reuse time follows an exponential
distribution. Its policy evicts the block least likely to be reused within
its expected lifespan, and among equals the block furthest from the prompt
head (a tail block is worth less: it only hits if its whole prefix does).

Sources actually read: the paper's abstract (arXiv v3 HTML) and secondary
summaries of its policy (https://blog.kkkzoz.top/posts/papers/llm/kvcache-cache-in-the-wild-characterizing-and-optimizing-kvcache-cache-at-a-large-cloud-provider:
categories such as API vs chat and first vs later turns, head blocks worth
more than tail blocks; https://podcast.app/characterizing-llm-kv-cache-workloads-in-production-e435871982:
per-category exponential reuse probability). The policy section's own text
and formulas were not available (searched 2026-11-28), so the formula below
is this kernel's reading of that description, not the paper's equations.

What this kernel follows:
- categories: workload x turn index (BlockTrace.categories; turns >= 7 share
  one category); a block belongs to the category of its last access;
- online estimation per category from the accesses so far: reuse probability
  p (reuses / accesses, prior 1/2 with weight 2) and an exponential reuse
  time with rate lambda = reuses / sum of reuse intervals (prior: one
  interval of the global mean);
- priority = probability of a reuse within the block's expected lifespan
  given none so far: with age a since the last access and lifespan T,
      P = [p e^(-lambda a) / (p e^(-lambda a) + 1 - p)] * (1 - e^(-lambda T)),
  the first factor the posterior that a reuse is still to come, the second
  the chance it comes within T; evict the smallest P;
- spatial locality: within a request, tail blocks are evicted before head
  blocks.

What it simplifies:
- time is virtual: requests served so far (the mixed trace interleaves
  workloads whose own clocks are unrelated), not seconds;
- the expected lifespan T is the cache's own characteristic time, the mean
  age of evicted blocks (exponential moving average), not a fixed window;
- the distributions are updated on every access instead of refitted
  periodically, and the fit is the exponential's maximum-likelihood rate
  (uncensored intervals only);
- P decreases with age within a category, so each category is an LRU list
  (tail-first within a request) and eviction compares only the list tails:
  O(number of categories) per eviction.

No threshold and no hand-made list, unlike WA-LRU (mixed/workload_aware.py).
"""

from __future__ import annotations

import math

import numpy as np

from prefix_study.replay.kernels._common import REQUEST_START, jit, record_hit, serve_jit
from prefix_study.replay.kernels._serve import specialise
from prefix_study.replay.policies import register_policy

#: Weight of the newest eviction age in the lifespan average.
LIFESPAN_EMA = 1.0 / 32.0


@jit
def _score(p, lam, age, lifespan):
    s = p * math.exp(-lam * age)
    return s / (s + 1.0 - p) * (1.0 - math.exp(-lam * lifespan))


@jit
def init(capacity, num_ids, num_accesses, num_categories):
    k_max = max(1, num_categories)
    regs = np.zeros(3, dtype=np.int64)  # blocks held, capacity, requests served - 1
    regs[1] = capacity
    regs[2] = -1
    fregs = np.zeros(3, dtype=np.float64)  # all reuses, all intervals, lifespan
    fregs[2] = -1.0
    # One LRU list per category; sentinel of category k is num_ids + k,
    # nxt[sentinel] = most recent, prv[sentinel] = least recent.
    nxt = np.empty(num_ids + k_max, dtype=np.int32)
    prv = np.empty(num_ids + k_max, dtype=np.int32)
    for k in range(k_max):
        nxt[num_ids + k] = num_ids + k
        prv[num_ids + k] = num_ids + k
    return (regs, fregs, nxt, prv,
            np.zeros(k_max, dtype=np.int64),       # blocks in each category's list
            np.zeros(num_ids, dtype=np.bool_),     # cached
            np.zeros(num_ids, dtype=np.int32),     # category of the block's last access
            np.full(num_ids, -1, dtype=np.int64),  # request of the block's last access
            np.zeros(k_max, dtype=np.float64),     # accesses per category
            np.zeros(k_max, dtype=np.float64),     # reuses per category
            np.zeros(k_max, dtype=np.float64))     # sum of reuse intervals per category


@jit
def contains(state, x):
    return state[5][x]


@serve_jit
def serve(state, ids, flags, cost, category, s, e, prefix, hits, evicted):
    regs, fregs, nxt, prv, in_list, cached, cat_of, last_req, accesses, reuses, interval_sum = state
    capacity = regs[1]
    if capacity <= 0:
        return 0, 0
    k_max = in_list.shape[0]
    num_ids = cached.shape[0]
    size = regs[0]
    req = regs[2]
    all_reuses = fregs[0]
    all_interval = fregs[1]
    lifespan = fregs[2]
    anchor = -1  # the current request's last placed block
    nh = 0
    ne = 0
    run = True
    for i in range(s, e):
        f = flags[i]
        if f & REQUEST_START:
            req += 1
            anchor = -1
        x = ids[i]
        k = category[i]
        c = cached[x]
        run, nh = record_hit(hits, i, c, f, run, prefix, nh)
        # Reuse statistics of the category the block was last accessed in.
        accesses[k] += 1.0
        if last_req[x] >= 0:
            gap = float(req - last_req[x])
            kk = cat_of[x]
            reuses[kk] += 1.0
            interval_sum[kk] += gap
            all_reuses += 1.0
            all_interval += gap
        last_req[x] = req
        if c:
            p_ = prv[x]
            q_ = nxt[x]
            nxt[p_] = q_
            prv[q_] = p_
            in_list[cat_of[x]] -= 1
        else:
            if size == capacity:
                prior_mean = (all_interval + 1.0) / (all_reuses + 1.0)
                best = -1
                best_score = 0.0
                for j in range(k_max):
                    if in_list[j] == 0:
                        continue
                    v = prv[num_ids + j]
                    p = (reuses[j] + 1.0) / (accesses[j] + 2.0)
                    mean = (interval_sum[j] + prior_mean) / (reuses[j] + 1.0)
                    lam = 1.0 / max(mean, 1e-9)
                    life = lifespan if lifespan > 0.0 else 1.0 / lam
                    sc = _score(p, lam, float(req - last_req[v]), life)
                    if best < 0 or sc < best_score:
                        best = v
                        best_score = sc
                v = best
                age = float(req - last_req[v])
                if lifespan < 0.0:
                    lifespan = max(age, 1.0)
                else:
                    lifespan += LIFESPAN_EMA * (max(age, 1.0) - lifespan)
                p_ = prv[v]
                q_ = nxt[v]
                nxt[p_] = q_
                prv[q_] = p_
                in_list[cat_of[v]] -= 1
                cached[v] = False
                if ne < evicted.shape[0]:
                    evicted[ne] = v
                ne += 1
            else:
                size += 1
            cached[x] = True
        # Place x: right behind the request's previous block (so a request's
        # tail sits nearer the LRU end than its head), else at the MRU end.
        if anchor >= 0 and anchor != x and cached[anchor] and cat_of[anchor] == k:
            q_ = nxt[anchor]
            nxt[anchor] = x
            prv[x] = anchor
            nxt[x] = q_
            prv[q_] = x
        else:
            s_ = num_ids + k
            q_ = nxt[s_]
            nxt[s_] = x
            prv[x] = s_
            nxt[x] = q_
            prv[q_] = x
        cat_of[x] = k
        in_list[k] += 1
        anchor = x
    regs[0] = size
    regs[2] = req
    fregs[0] = all_reuses
    fregs[1] = all_interval
    fregs[2] = lifespan
    return nh, ne


register_policy(
    "wa_prob",
    "Workload-aware (ATC'25): evict the block least likely to be reused within its lifespan, "
    "from per-category (workload x turn) reuse statistics learnt online.",
    specialise(init, serve, contains, __file__),
    needs_context=True,
)
