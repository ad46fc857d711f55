"""Block-access traces derived from the engine's token ids with vLLM's own hash.

vLLM's CPU backend runs block sizes that are multiples of 32 only; 16-token
traces are derived offline. The derivation computes vLLM's chained
`hash_block_tokens` with the engine's hash function and NONE_HASH seed
(`block_hash.py`, equal to vLLM's by test, without importing vLLM), and is
proven by reproducing the hashes in the engine's own KV events at 32 and 64.

Each request contributes one row per full block of the tokens the engine holds
KV for: the prompt and all but the last output token. `lookup` marks the
blocks vLLM looks up in its prefix cache (full blocks before the prompt's last
token; the rest are only computed and stored). `engine_hit` is the engine's
own answer where it ran at that block size, else null. `partial_tail` (an
extra column beside the contract's) says the request also held a partial,
never-cached block after its full ones; vLLM's free queue replay needs it.
"""

from __future__ import annotations

from typing import Callable, Sequence

import polars as pl

from prefix_study.traces.block_hash import chained_block_hashes
from prefix_study.traces.block_ids import trace_frame
from prefix_study.traces.schema import PREFIX_HASH_ALGO, TRACE_SCHEMA, reported_lookup_index


def kv_token_ids(prompt: Sequence[int], output: Sequence[int]) -> list[int]:
    """Tokens the engine computes KV for: the prompt and all but the last output."""
    return list(prompt) + list(output)[:-1]


def derive_block_trace(requests: pl.DataFrame, block_size: int, none_hash_seed: str,
                       engine_block_size: int | None = None,
                       algo: str = PREFIX_HASH_ALGO) -> pl.DataFrame:
    """One row per block access, in the order the engine scheduled the requests.

    `engine_hit` is filled when `engine_block_size == block_size` (the engine
    ran at this size): a lookup block is a hit iff it lies within the
    engine's `num_cached_tokens`.
    """
    measured = engine_block_size == block_size
    cols: dict[str, list] = {k: [] for k in (*TRACE_SCHEMA, "partial_tail") if k != "block_id"}
    if requests.height and requests["scheduled_s"].null_count() == requests.height:
        # A server run: its scheduler is out of sight; it takes requests first
        # come, first served, so the client's send order stands in.
        ordered = requests.sort(["arrival_s", "request_id"])
    else:
        ordered = requests.sort(["scheduled_s", "scheduled_step", "request_id"], nulls_last=True)
    for r in ordered.iter_rows(named=True):
        prompt, output = r["prompt_token_ids"], r["output_token_ids"]
        tokens = kv_token_ids(prompt, output)
        hashes = chained_block_hashes(tokens, block_size, none_hash_seed, algo)
        partial = len(tokens) % block_size != 0
        n_lookup = (len(prompt) - 1) // block_size
        n_hit = r["num_cached_tokens"] // block_size
        for pos, h in enumerate(hashes):
            cols["request_id"].append(r["request_id"])
            cols["workload"].append(r["workload"])
            cols["time_s"].append(r["scheduled_s"] if r["scheduled_s"] is not None else r["arrival_s"])
            cols["position"].append(pos)
            cols["block_hash"].append(h)
            cols["lookup"].append(pos < n_lookup)
            cols["engine_hit"].append((pos < n_hit) if measured else None)
            cols["partial_tail"].append(partial)
    return trace_frame(cols, {"partial_tail": pl.Boolean})


def cached_set_before(kv_events: pl.DataFrame) -> Callable[[int], set[int]]:
    """Replay the engine's KV events: the set of cached hashes before event index i."""
    events = kv_events.sort("seq").select("event_index", "event", "block_hash").rows()
    state: set[int] = set()
    pos = 0

    def before(event_index: int) -> set[int]:
        nonlocal pos
        while pos < len(events) and events[pos][0] < event_index:
            _, kind, h = events[pos]
            if kind == "stored":
                state.add(h)
            elif kind == "removed":
                state.discard(h)
            else:
                state.clear()
            pos += 1
        return state

    return before


def hash_sets(derived: set[int], stored: set[int]) -> dict:
    """The derivation's proof: the derived hashes against those the engine stored."""
    return {"derived_hashes": len(derived), "engine_stored_hashes": len(stored),
            "derived_equals_engine": derived == stored, "derived_not_stored": len(derived - stored),
            "stored_not_derived": len(stored - derived)}


def _request_lookups(requests: pl.DataFrame) -> list[tuple[str, dict]]:
    """(request id, lookup) for every prefix lookup the engine made."""
    out = []
    for rid, lookups in requests.select("request_id", "lookups").rows():
        out += [(rid, lk) for lk in lookups or []]
    return out


def check_engine_consistency(requests: pl.DataFrame, kv_events: pl.DataFrame,
                             trace: pl.DataFrame, block_size: int) -> dict:
    """Prove the derivation and the accounting against the engine's own events.

    - derivation: the set of derived block hashes equals the set of hashes the
      engine stored (every block starts uncached, so each was stored once);
    - lookups: every prefix lookup vLLM made (a waiting request is looked up
      again each step its allocation fails, and again after a preemption,
      then over its prompt and the outputs so far) found exactly the leading
      blocks of its first `num_tokens - 1` tokens that were cached, per the
      KV events, when it was made;
    - reporting: `num_cached_tokens` equals the result of the lookup vLLM
      reports, the last one before the request's first preemption, and that
      lookup admitted the request.
    """
    stored = set(kv_events.filter(pl.col("event") == "stored")["block_hash"].to_list())
    derived = set(trace["block_hash"].to_list())
    hashes = {rid: g.sort("position")["block_hash"].to_list()
              for (rid,), g in trace.group_by("request_id")}
    lookups = _request_lookups(requests)
    before = cached_set_before(kv_events)
    lookup_mismatches = []
    for rid, lk in sorted(lookups, key=lambda x: x[1]["event_index"]):
        cache = before(lk["event_index"])
        blocks = hashes.get(rid, [])[:(lk["num_tokens"] - 1) // block_size]
        leading = 0
        for h in blocks:
            if h not in cache:
                break
            leading += 1
        if leading * block_size != lk["cached_tokens"]:
            lookup_mismatches.append({"request_id": rid, "event_index": lk["event_index"],
                                      "preemptions": lk["preemptions"],
                                      "engine": lk["cached_tokens"],
                                      "from_events": leading * block_size})
    by_request: dict[str, list[dict]] = {}
    for rid, lk in lookups:
        by_request.setdefault(rid, []).append(lk)
    mismatches = []
    for r in requests.iter_rows(named=True):
        lks = by_request.get(r["request_id"], [])
        i = reported_lookup_index([lk["preemptions"] for lk in lks])
        if i is None:
            mismatches.append({"request_id": r["request_id"], "engine": r["num_cached_tokens"],
                               "from_events": None, "reason": "no lookup recorded"})
        elif lks[i]["cached_tokens"] != r["num_cached_tokens"] or lks[i]["admitted"] is False:
            mismatches.append({"request_id": r["request_id"], "engine": r["num_cached_tokens"],
                               "from_events": lks[i]["cached_tokens"],
                               "reason": "reported lookup was not admitted"
                               if lks[i]["admitted"] is False else "reported lookup differs"})
    preempted = sum(1 for lks in by_request.values() if max(lk["preemptions"] for lk in lks) > 0)
    retried = sum(1 for lks in by_request.values()
                  if sum(lk["preemptions"] == 0 for lk in lks) > 1)
    return {
        "block_size": block_size,
        "requests_checked": requests.height,
        "lookups_checked": len(lookups),
        "requests_looked_up_again_after_failed_allocation": retried,
        "requests_preempted": preempted,
        **hash_sets(derived, stored),
        "lookup_mismatches": lookup_mismatches[:20],
        "num_lookup_mismatches": len(lookup_mismatches),
        "consistency_mismatches": mismatches[:20],
        "num_consistency_mismatches": len(mismatches),
        "ok": derived == stored and not mismatches and not lookup_mismatches,
    }


def residency(kv_events: pl.DataFrame) -> dict[int, list[tuple[float, float]]]:
    """Per block hash, the [stored, removed) intervals of `time_s` in which
    the events say it was cached (open intervals end at +inf)."""
    spans: dict[int, list[tuple[float, float]]] = {}
    open_at: dict[int, float] = {}
    for kind, h, t in kv_events.sort("seq").select("event", "block_hash", "time_s").rows():
        if kind == "stored":
            open_at.setdefault(h, t)
        elif kind == "removed":
            if h in open_at:
                spans.setdefault(h, []).append((open_at.pop(h), t))
        else:
            for blk, start in open_at.items():
                spans.setdefault(blk, []).append((start, t))
            open_at.clear()
    for blk, start in open_at.items():
        spans.setdefault(blk, []).append((start, float("inf")))
    return spans


def check_server_consistency(requests: pl.DataFrame, kv_events: pl.DataFrame,
                             trace: pl.DataFrame, block_size: int) -> dict:
    """Prove the derivation and the server's accounting against its events,
    with the client's times in place of the scheduler's lookups (a server run
    records none; engine/server.py). Client and engine share one host clock.

    - derivation: as `check_engine_consistency`;
    - each request's `num_cached_tokens` is whole blocks, at most its looked-up
      blocks, and every block it counts was cached at some time between its
      send and its first token (its lookup lies in between). Not "at the
      first token": the client stamps a token when it reads it, and on a busy
      host the engine may have finished the request and evicted its blocks
      by then;
    - the first looked-up block it did not count was not cached throughout
      from its send to its first token (at the lookup, between the two, it
      was not).
    """
    stored = set(kv_events.filter(pl.col("event") == "stored")["block_hash"].to_list())
    derived = set(trace["block_hash"].to_list())
    hashes = {rid: g.sort("position")["block_hash"].to_list()
              for (rid,), g in trace.group_by("request_id")}
    spans = residency(kv_events)

    def cached_during(h: int, t0: float, t1: float) -> bool:
        return any(a <= t1 and t0 < b for a, b in spans.get(h, ()))

    def cached_throughout(h: int, t0: float, t1: float) -> bool:
        return any(a <= t0 and t1 < b for a, b in spans.get(h, ()))

    mismatches = []
    for r in requests.iter_rows(named=True):
        cached, rid = int(r["num_cached_tokens"]), r["request_id"]
        n_lookup = (int(r["num_prompt_tokens"]) - 1) // block_size
        seen = r["first_token_s"] if r["first_token_s"] is not None else r["finished_s"]
        blocks = hashes.get(rid, [])
        reason = None
        if cached % block_size or cached > n_lookup * block_size:
            reason = f"cached tokens not whole looked-up blocks (at most {n_lookup * block_size})"
        elif not all(cached_during(h, r["arrival_s"], seen) for h in blocks[:cached // block_size]):
            reason = "a counted block was not cached between send and first token"
        elif cached // block_size < n_lookup and \
                cached_throughout(blocks[cached // block_size], r["arrival_s"], seen):
            reason = "the first uncounted block was cached throughout send to first token"
        if reason:
            mismatches.append({"request_id": rid, "engine": cached, "reason": reason})
    return {
        "block_size": block_size,
        "check": "server: client times against the events' times",
        "requests_checked": requests.height,
        **hash_sets(derived, stored),
        "consistency_mismatches": mismatches[:20],
        "num_consistency_mismatches": len(mismatches),
        "ok": derived == stored and not mismatches,
    }


def block_usage(trace: pl.DataFrame, kv_events: pl.DataFrame) -> pl.DataFrame:
    """Per block (engine block size): hits, use times, stores and evictions."""
    uses = trace.group_by("block_hash").agg(
        pl.col("engine_hit").fill_null(False).sum().cast(pl.Int64).alias("hits"),
        pl.len().alias("uses"),
        pl.col("time_s").sort().alias("use_times"),
        pl.col("time_s").min().alias("first_use_s"),
    )
    ev = kv_events.filter(pl.col("block_hash").is_not_null()).group_by("block_hash").agg(
        (pl.col("event") == "stored").sum().cast(pl.Int64).alias("times_stored"),
        (pl.col("event") == "removed").sum().cast(pl.Int64).alias("times_evicted"),
    )
    return uses.join(ev, on="block_hash", how="left").sort("first_use_s", "block_hash")

