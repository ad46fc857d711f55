"""One-pass hit-rate curves equal per-capacity replays (hypothesis), vLLM's
tail-first LRU is a stack algorithm, and sampled curves track exact ones."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from prefix_study.replay import encode_trace, replay, replay_hit_mask
from prefix_study.replay.curves import curve_frame, hit_curve, lru_stack_distances
from prefix_study.replay.synthetic import SyntheticTraceConfig, synthetic_trace, trace_from_requests

from test_replay_properties import any_requests, chained_requests

SETTINGS = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def per_capacity(trace, policy, semantics):
    return [replay(trace, policy, c, semantics).hits for c in range(trace.num_ids + 1)]


@SETTINGS
@given(any_requests())
def test_block_lru_curve_equals_replays_on_any_trace(requests):
    trace = encode_trace(trace_from_requests(requests, chain=False))
    assert hit_curve(trace, "lru", "block").tolist() == per_capacity(trace, "lru", "block")


@SETTINGS
@given(chained_requests())
def test_prefix_curves_equal_replays(requests):
    trace = encode_trace(trace_from_requests(requests))
    assert hit_curve(trace, "lru", "block").tolist() == per_capacity(trace, "lru", "block")
    assert hit_curve(trace, "lru_plain", "prefix").tolist() == per_capacity(trace, "lru_plain", "prefix")
    assert hit_curve(trace, "lru", "prefix").tolist() == per_capacity(trace, "lru", "prefix")


@SETTINGS
@given(chained_requests(), st.data())
def test_tail_first_lru_keeps_inclusion_with_partial_tails(requests, data):
    # With partial tail blocks there is no one-pass curve (curves.py), but the
    # stack property still holds access by access: a hit at c is a hit at c+1.
    partial = data.draw(st.lists(st.booleans(), min_size=len(requests), max_size=len(requests)))
    frame = trace_from_requests(requests).with_columns(
        pl.Series("partial_tail", np.repeat(partial, [len(r) for r in requests]))
    )
    trace = encode_trace(frame)
    prev = replay_hit_mask(trace, "lru", 1, "prefix")
    for c in range(2, trace.num_ids + 2):
        cur = replay_hit_mask(trace, "lru", c, "prefix")
        assert not np.any(prev & ~cur), c
        prev = cur
    if any(partial):
        with pytest.raises(ValueError, match="partial"):
            hit_curve(trace, "lru", "prefix")


def test_stack_distances_by_hand():
    # a b c a b b d a: a's reuse sees {b, c} -> 3; b's {c, a} -> 3; b again 1;
    # a's last reuse sees {b, d} -> 3.
    ids = np.array([0, 1, 2, 0, 1, 1, 3, 0], dtype=np.int32)
    d = lru_stack_distances(ids, 4)
    cold = np.iinfo(np.int64).max
    assert d.tolist() == [cold, cold, cold, 3, 3, 1, cold, 3]


def test_curve_frame_on_a_synthetic_trace():
    trace = encode_trace(synthetic_trace(SyntheticTraceConfig(num_requests=300, seed=5)))
    frame = curve_frame(trace, "w", 16, ["lru", "fifo"], ["block", "prefix"], extra_capacities=[17])
    assert set(frame.filter(pl.col("policy") == "lru")["method"]) == {"one_pass"}
    assert set(frame.filter(pl.col("policy") == "fifo")["method"]) == {"replay"}
    assert (frame["capacity_tokens"] == 16 * frame["capacity_blocks"]).all()
    for row in frame.filter(pl.col("capacity_blocks").is_in([1, 17, trace.num_ids])).iter_rows(named=True):
        assert row["hits"] == replay(trace, row["policy"], row["capacity_blocks"], row["semantics"]).hits
    with pytest.raises(ValueError, match="no one-pass curve"):
        hit_curve(trace, "fifo", "block")


# --- sampled curves ---------------------------------------------------------

from prefix_study.replay.sampling import hot_blocks, sample_frame, sampled_hit_rates  # noqa: E402


def test_full_rate_sample_is_exact():
    frame = synthetic_trace(SyntheticTraceConfig(num_requests=400, seed=9))
    trace = encode_trace(frame)
    caps = [5, 50, 500, 5000]
    sample = sample_frame(frame, 1.0)
    for policy, sem in (("lru", "block"), ("lru_plain", "prefix"), ("lru", "prefix")):
        exact = hit_curve(trace, policy, sem)[caps] / trace.num_lookups
        np.testing.assert_allclose(sampled_hit_rates(sample, policy, sem, caps), exact)


def test_sample_keeps_whole_requests_and_hot_heads():
    frame = synthetic_trace(SyntheticTraceConfig(num_requests=600, seed=4))
    sample = sample_frame(frame, 0.1, seed=3)
    hot = hot_blocks(frame["block_hash"].to_numpy(),
                     frame.group_by("request_id", maintain_order=True).len()["len"].to_numpy())
    assert hot.shape[0] > 0  # the popular system prompts
    kept = sample.frame.with_columns(pl.Series("p", sample.probability))
    # Every request keeps its hot head; a request's non-hot rows are all kept or none.
    assert set(frame["request_id"].unique()) == set(kept["request_id"].unique())
    hot = pl.Series(hot, dtype=pl.UInt64)
    full = frame.filter(~pl.col("block_hash").is_in(hot)).group_by("request_id").len()
    part = kept.filter(pl.col("p") < 1).group_by("request_id").len()
    joined = part.join(full, on="request_id", suffix="_full")
    assert (joined["len"] == joined["len_full"]).all()
    assert 0.03 < part.height / full.height < 0.3
    # Prefix rule inside the sample: each kept request is a prefix-closed run of positions.
    assert (kept.group_by("request_id").agg((pl.col("position").max() + 1 == pl.len()).alias("ok"))["ok"]).all()


def test_sampled_curve_tracks_exact_on_a_synthetic_trace():
    frame = synthetic_trace(SyntheticTraceConfig(num_requests=4000, seed=2))
    trace = encode_trace(frame)
    caps = np.array([2000, 8000, 30000])
    exact = hit_curve(trace, "lru_plain", "prefix")[caps] / trace.num_lookups
    errors = [np.abs(sampled_hit_rates(sample_frame(frame, 0.25, seed=s), "lru_plain", "prefix", caps) - exact).mean()
              for s in range(3)]
    assert np.mean(errors) < 0.05, errors
    # Policies without a one-pass curve are replayed at scaled capacities.
    est = sampled_hit_rates(sample_frame(frame, 0.25), "fifo", "prefix", caps)
    assert np.all((est >= 0) & (est <= 1))


def test_synthetic_stream_is_seeded_and_chained():
    from prefix_study.replay.synthetic import synthetic_block_stream

    cfg = SyntheticTraceConfig(num_requests=3000, seed=5)
    runs = [list(synthetic_block_stream(cfg, chunk_requests=1000, window=50)) for _ in range(2)]
    assert [len(l) for _, l in runs[0]] == [1000, 1000, 1000]
    for (a, la), (b, lb) in zip(*runs):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(la, lb)
    ids = np.concatenate([i for i, _ in runs[0]])
    lengths = np.concatenate([l for _, l in runs[0]])
    requests = np.split(ids, np.cumsum(lengths)[:-1])
    # Chain ids: no block twice in a request, and a block id always sits behind the same prefix.
    parent: dict[int, int] = {}
    for r in requests:
        assert len(set(r.tolist())) == len(r)
        for prev, b in zip([-1, *r[:-1].tolist()], r.tolist()):
            assert parent.setdefault(b, prev) == prev
    # Follow-ups extend an earlier request (multi-turn reuse) by new blocks.
    seen: set[tuple[int, ...]] = set()
    followups = 0
    for r in requests:
        followups += any(tuple(r[:k].tolist()) in seen for k in range(1, len(r)))
        seen.add(tuple(r.tolist()))
    assert 0.3 < followups / len(requests) < 0.7  # followup_probability 0.5


def test_weighted_one_pass_equals_the_estimator_by_brute_force():
    """sampling.weighted_lru_curves (one pass, no stored distances) against
    the module's estimator written out: distance = sum of 1/p over the
    distinct blocks since the previous use, same-key blocks counting 1."""
    from prefix_study.replay.sampling import weighted_lru_curves

    frame = synthetic_trace(SyntheticTraceConfig(num_requests=300, seed=6))
    sample = sample_frame(frame, 0.3, seed=1, hot_share=0.05)
    trace = encode_trace(sample.frame)
    p, key = sample.probability, sample.key
    assert (p < 1).any() and (p == 1).any()
    ids, flags = trace.ids.tolist(), trace.flags.tolist()
    d = []
    for i, x in enumerate(ids):
        prev = max((j for j in range(i) if ids[j] == x), default=None)
        if prev is None:
            d.append(np.inf)
            continue
        since = {ids[j]: j for j in range(prev + 1, i + 1)}
        est = sum(1.0 / p[j] for j in since.values())
        if p[i] < 1:
            est -= (1.0 / p[i] - 1.0) * sum(key[j] == key[i] for j in since.values())
        d.append(est)
    run, prefix_d = 0.0, []
    for i, v in enumerate(d):
        run = v if flags[i] & 1 else max(run, v)
        prefix_d.append(run)
    caps = np.array([3.0, 10.0, 40.0, 150.0, 600.0])
    w = 1.0 / p
    block, prefix = weighted_lru_curves(trace.ids, trace.flags, p, key, caps, tail_first=False)
    for got, dist in ((block, np.array(d)), (prefix, np.array(prefix_d))):
        want = [(w * (dist <= c + 1e-9)).sum() / w.sum() for c in caps]
        np.testing.assert_allclose(got, want, rtol=1e-9)
