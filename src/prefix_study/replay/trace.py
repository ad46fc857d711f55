"""Block-access traces encoded for the replay kernels.

The kernels never see 64-bit hashes: every distinct `block_hash` becomes a
dense int32 id (0..num_ids-1, in order of first appearance), so cache state
lives in flat arrays indexed by id instead of hash maps, and blocks used close
in time sit close in memory. Request boundaries and the trace's `lookup`
column travel as per-access flag bits.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl

from prefix_study.replay.kernels._common import NOT_LOOKED_UP, PARTIAL_TAIL, REQUEST_START, jit

#: Next-use value for an access that is the last use of its block.
NEVER = np.iinfo(np.int64).max

#: Turn indices at or above this share one category (multi-turn chat): the
#: reuse pattern of turn 7 and turn 30 is alike, and few blocks reach them.
MAX_TURN_CATEGORY = 7

#: A request id `<workload>-<conversation>-<turn>` (workloads/client.py)
#: carries its turn index; any other id (external traces, synthetic traces)
#: is turn 0.
_TURN_PATTERN = r"-\d+-(\d+)$"


@dataclass
class BlockTrace:
    """One trace, ready for the kernels.

    ids: dense block id per access (int32); flags: REQUEST_START / NOT_LOOKED_UP /
    PARTIAL_TAIL bits (uint8, defined in kernels/_common.py); workload: index into `workload_names` per access (int16).

    Context for policies that need more than the id stream (registered with
    `needs_context`): position: the block's index in its request (int32);
    turn: the request's turn index in its conversation (int16, capped at
    MAX_TURN_CATEGORY). Both default to what the flags imply (position from
    the request starts, turn 0) for traces built without them.
    """

    ids: np.ndarray
    flags: np.ndarray
    num_ids: int
    workload: np.ndarray
    workload_names: tuple[str, ...]
    position: np.ndarray | None = None
    turn: np.ndarray | None = None
    _next_use: np.ndarray | None = field(default=None, repr=False)
    # Request id per access, kept (not copied) to derive `turn` on first use.
    _request_id: pl.Series | None = field(default=None, repr=False)

    @property
    def accesses(self) -> int:
        return int(self.ids.shape[0])

    @property
    def looked_up(self) -> np.ndarray:
        """Accesses that count towards accesses and hits."""
        return (self.flags & NOT_LOOKED_UP) == 0

    @property
    def num_lookups(self) -> int:
        return int(np.count_nonzero(self.looked_up))

    @property
    def num_requests(self) -> int:
        return int(np.count_nonzero(self.flags & REQUEST_START))

    @property
    def next_use(self) -> np.ndarray:
        """Index of the next access of the same block (NEVER if none), for Belady."""
        if self._next_use is None:
            self._next_use = next_use_positions(self.ids)
        return self._next_use

    @property
    def positions(self) -> np.ndarray:
        """Block index within its request (int32)."""
        if self.position is None:
            self.position = positions_from_flags(self.flags)
        return self.position

    @property
    def turns(self) -> np.ndarray:
        """Turn index of the access's request (int16; 0 when unknown)."""
        if self.turn is None:
            if self._request_id is not None:
                self.turn = turn_indices(self._request_id, (self.flags & REQUEST_START) != 0)
            else:
                self.turn = np.zeros(self.accesses, dtype=np.int16)
        return self.turn

    def categories(self) -> tuple[np.ndarray, int]:
        """Category per access (int32) and the number of categories: workload
        x turn index (capped), the grouping of the ATC'25 workload-aware policy."""
        per_workload = MAX_TURN_CATEGORY + 1
        cat = self.workload.astype(np.int32) * per_workload + np.minimum(self.turns, MAX_TURN_CATEGORY)
        return cat.astype(np.int32), max(1, len(self.workload_names)) * per_workload

    def select(self, keep: np.ndarray) -> "BlockTrace":
        """The sub-trace of accesses where `keep` is True (whole requests only)."""
        # Re-densify so arrays stay as small as the sub-trace's working set.
        ids, num_ids = dense_block_ids(self.ids[keep].astype(np.uint64))
        return BlockTrace(
            ids=ids,
            flags=self.flags[keep],
            num_ids=int(num_ids),
            workload=self.workload[keep],
            workload_names=self.workload_names,
            position=None if self.position is None else self.position[keep],
            turn=self.turns[keep],
        )


@jit
def _first_appearance_ids(hashes):
    """Dense ids in order of first appearance (open addressing, one pass)."""
    n = hashes.shape[0]
    size = 1
    while size < n + n // 2 + 1:
        size *= 2
    mask = size - 1
    keys = np.empty(size, dtype=np.uint64)
    vals = np.full(size, -1, dtype=np.int32)
    out = np.empty(n, dtype=np.int32)
    count = 0
    for i in range(n):
        k = hashes[i]
        j = ((k ^ (k >> np.uint64(29))) * np.uint64(0xBF58476D1CE4E5B9)) >> np.uint64(20)
        j = np.int64(j & np.uint64(mask))
        while True:
            v = vals[j]
            if v == -1:
                keys[j] = k
                vals[j] = count
                out[i] = count
                count += 1
                break
            if keys[j] == k:
                out[i] = v
                break
            j = (j + 1) & mask
    return out, count


def dense_block_ids(hashes: np.ndarray) -> tuple[np.ndarray, int]:
    """Map uint64 block hashes to dense int32 ids 0..k-1 in order of first
    appearance, so blocks used close in time sit close in memory."""
    return _first_appearance_ids(np.ascontiguousarray(hashes, dtype=np.uint64))


@jit
def positions_from_flags(flags):
    """Index of each access within its request (counted from REQUEST_START)."""
    out = np.empty(flags.shape[0], dtype=np.int32)
    p = 0
    for i in range(flags.shape[0]):
        if flags[i] & 1:  # REQUEST_START
            p = 0
        out[i] = p
        p += 1
    return out


def turn_indices(request_id: pl.Series, starts: np.ndarray) -> np.ndarray:
    """Turn index per access from the request ids (int16, capped)."""
    first = np.flatnonzero(starts)
    turn_per_request = (
        request_id.gather(first).str.extract(_TURN_PATTERN, 1)
        .cast(pl.Int64, strict=False).fill_null(0).clip(0, MAX_TURN_CATEGORY).to_numpy()
    )
    lengths = np.diff(np.append(first, request_id.len()))
    return np.repeat(turn_per_request, lengths).astype(np.int16)


def next_use_positions(ids: np.ndarray) -> np.ndarray:
    """For each access, the index of the next access to the same id (NEVER if none)."""
    n = ids.shape[0]
    out = np.full(n, NEVER, dtype=np.int64)
    if n < 2:
        return out
    order = np.argsort(ids, kind="stable")
    same = ids[order[1:]] == ids[order[:-1]]
    out[order[:-1][same]] = order[1:][same]
    return out


def request_start_mask(frame: pl.DataFrame) -> np.ndarray:
    """True where a new request begins: position 0, or request/workload changes."""
    starts = frame.select(
        (
            (pl.col("position") == 0)
            | (pl.col("request_id") != pl.col("request_id").shift(1))
            | (pl.col("workload") != pl.col("workload").shift(1))
        )
        .fill_null(True)
        .alias("start")
    )["start"]
    return starts.to_numpy()


def encode_trace(frame: pl.DataFrame) -> BlockTrace:
    """Encode a trace frame (trace contract columns, in access order)."""
    n = frame.height
    if n == 0:
        return BlockTrace(
            ids=np.zeros(0, np.int32),
            flags=np.zeros(0, np.uint8),
            num_ids=0,
            workload=np.zeros(0, np.int16),
            workload_names=(),
        )
    ids, num_ids = dense_block_ids(frame["block_hash"].to_numpy())
    starts = request_start_mask(frame)
    flags = np.where(starts, REQUEST_START, np.uint8(0)).astype(np.uint8)
    if "lookup" in frame.columns:
        not_looked_up = ~frame["lookup"].fill_null(True).to_numpy()
        flags |= np.where(not_looked_up, NOT_LOOKED_UP, np.uint8(0)).astype(np.uint8)
    if "partial_tail" in frame.columns:
        partial = frame["partial_tail"].fill_null(False).to_numpy() & (flags & REQUEST_START != 0)
        flags |= np.where(partial, PARTIAL_TAIL, np.uint8(0)).astype(np.uint8)
    names = frame["workload"].unique(maintain_order=True).to_list()
    codes = frame["workload"].replace_strict(
        names, list(range(len(names))), return_dtype=pl.Int16
    ).to_numpy()
    return BlockTrace(
        ids=ids,
        flags=flags,
        num_ids=int(num_ids),
        workload=codes,
        workload_names=tuple(names),
        position=frame["position"].to_numpy().astype(np.int32, copy=False),
        _request_id=frame["request_id"],
    )


REPLAY_COLUMNS = ("request_id", "workload", "position", "block_hash", "lookup", "partial_tail")


#: Trace columns only some traces have: `partial_tail` (derived traces; not external ones).
OPTIONAL_COLUMNS = ("partial_tail",)


def read_trace(path: Path | str, columns: tuple[str, ...] = REPLAY_COLUMNS) -> pl.DataFrame:
    """Read the columns of a trace Parquet file that the replays need
    (`OPTIONAL_COLUMNS` are skipped when absent; any other missing one is an error)."""
    present = pl.read_parquet_schema(path)
    return pl.read_parquet(path, columns=[c for c in columns if c in present or c not in OPTIONAL_COLUMNS])


def load_block_trace(path: Path | str) -> BlockTrace:
    """Read and encode one trace file."""
    return encode_trace(read_trace(path))
