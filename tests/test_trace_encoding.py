"""The trace contract's `block_id` column (traces/block_ids.py) and the
replay's encoding of a trace frame (replay/trace.py:encode_trace): ids equal
the dense first-use ids of the hashes, flags equal the request boundaries,
lookups and partial tails of the frame."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from prefix_study.mixed.interleave import interleave_traces
from prefix_study.replay.kernels._common import NOT_LOOKED_UP, PARTIAL_TAIL, REQUEST_START
from prefix_study.replay.synthetic import SyntheticTraceConfig, synthetic_trace, trace_from_requests
from prefix_study.replay.trace import bool_array, encode_trace
from prefix_study.traces.block_ids import dense_block_ids, with_block_ids
from prefix_study.traces.schema import TRACE_SCHEMA


def first_use_ids(hashes: list[int]) -> list[int]:
    seen: dict[int, int] = {}
    return [seen.setdefault(h, len(seen)) for h in hashes]


def expected_flags(frame: pl.DataFrame) -> np.ndarray:
    """Request starts from the request ids (a change of request, or position 0)."""
    start = frame.select(((pl.col("position") == 0) | (pl.col("request_id") != pl.col("request_id").shift(1)))
                         .fill_null(True))[:, 0].to_numpy()
    flags = np.where(start, REQUEST_START, 0)
    flags |= np.where(~frame["lookup"].fill_null(True).to_numpy(), NOT_LOOKED_UP, 0)
    if "partial_tail" in frame.columns:
        flags |= np.where(start & frame["partial_tail"].fill_null(False).to_numpy(), PARTIAL_TAIL, 0)
    return flags.astype(np.uint8)


def test_block_ids_are_the_dense_first_use_ids_of_the_hashes():
    frame = synthetic_trace(SyntheticTraceConfig(num_requests=300, seed=4))
    assert dict(frame.schema) == TRACE_SCHEMA
    assert frame["block_id"].to_list() == first_use_ids(frame["block_hash"].to_list())
    trace = encode_trace(frame)
    assert trace.num_ids == frame["block_hash"].n_unique()
    assert np.array_equal(trace.flags, expected_flags(frame))
    assert trace.workload_names == ("synthetic",) and not trace.workload.any()


def test_flags_carry_lookups_partial_tails_and_request_starts():
    frame = trace_from_requests([[1, 2, 3], [1, 2], [4]], chain=False,
                                lookup=[[True, True, False], [True, False], [False]])
    frame = frame.with_columns(pl.Series("partial_tail", [True, None, None, False, False, None]))
    trace = encode_trace(frame)
    assert trace.ids.tolist() == [0, 1, 2, 0, 1, 3]
    assert trace.flags.tolist() == expected_flags(frame).tolist() == [
        REQUEST_START | PARTIAL_TAIL, 0, NOT_LOOKED_UP, REQUEST_START, NOT_LOOKED_UP,
        REQUEST_START | NOT_LOOKED_UP]


def test_a_frame_without_block_ids_is_refused():
    frame = trace_from_requests([[1, 2]]).drop("block_id")
    with pytest.raises(ValueError, match="block_id"):
        encode_trace(frame)
    with pytest.raises(ValueError, match="negative"):
        encode_trace(with_block_ids(frame).with_columns(pl.lit(-1, pl.Int32).alias("block_id")))


def test_interleaving_derives_block_ids_over_the_mix():
    """Each file numbers its blocks from 0; the mix must not mistake two
    files' block 0 for one block, and must keep a block they share as one."""
    a = trace_from_requests([[1, 2], [1, 3]], workload="a", chain=False)
    b = trace_from_requests([[7, 8], [2]], workload="b", chain=False)
    assert a["block_id"].to_list()[:2] == b["block_id"].to_list()[:2] == [0, 1]
    mixed = interleave_traces({"a": a, "b": b})
    assert mixed["block_id"].to_list() == first_use_ids(mixed["block_hash"].to_list())
    trace = encode_trace(mixed)
    assert trace.workload_names == ("a", "b")
    assert np.array_equal(trace.flags, expected_flags(mixed))


def test_dense_ids_of_nothing():
    ids, count = dense_block_ids(np.zeros(0, dtype=np.uint64))
    assert ids.shape == (0,) and count == 0


@pytest.mark.parametrize("null", [True, False])
def test_bool_array_reads_the_arrow_bitmaps(null):
    rng = np.random.default_rng(0)
    for n in (0, 1, 7, 8, 9, 1003):
        values = [None if z else bool(v) for v, z in zip(rng.random(n) < 0.5, rng.random(n) < 0.2)]
        s = pl.Series(values, dtype=pl.Boolean)
        for column in (s, s.slice(3, max(0, n - 5)), pl.concat([s, s], rechunk=False)):
            expected = column.fill_null(null).to_numpy() if column.len() else np.zeros(0, np.bool_)
            got = bool_array(column, null)
            assert got.dtype == np.bool_ and np.array_equal(got, expected), (n, null)


def test_a_sample_numbers_its_blocks_anew():
    """A sampled frame keeps some requests: its ids are dense first-use ids
    over the sample, as the kernels' arrays expect."""
    from prefix_study.replay.sampling import sample_frame

    frame = synthetic_trace(SyntheticTraceConfig(num_requests=400, seed=6))
    sample = sample_frame(frame, 0.2, seed=1).frame
    assert 0 < sample.height < frame.height
    assert sample["block_id"].to_list() == first_use_ids(sample["block_hash"].to_list())
