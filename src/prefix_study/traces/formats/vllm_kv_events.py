"""A capture of a vLLM server's KV-cache events (`prefix-study-capture`).

`trace_path` is the capture's manifest, `capture.json`, beside
`events.parquet` (one row per block of every BlockStored / BlockRemoved /
AllBlocksCleared, with the publisher's sequence numbers) and, when the
traffic's client log was given, `requests.jsonl` (per request: send time,
prompt and output token ids, `usage.prompt_tokens_details.cached_tokens`).
Writer: `capture/subscriber.py`.

Per-request block accesses: each request's tokens (prompt, then all but the
last output token: what the server computes KV for) are cut into blocks,
and each block is named by the hash the server gave it, looked up in the
events' BlockStored records by (parent hash, the block's tokens). No hash
function or NONE_HASH seed is needed, so any server's capture works
(also one started without PYTHONHASHSEED). Requests are in send order (vLLM
schedules first come, first served); `lookup` marks full prompt blocks
before the last prompt token, `engine_hit` the blocks within the server's
`cached_tokens`, `partial_tail` a partial last block, as in a derived trace.

Refused, never guessed:
- a capture with gaps (sequence numbers neither received nor replayed), or
  whose events are not contiguous, or whose files changed since the manifest;
- a request block no BlockStored names (the capture began after the block
  was cached, or the block carries extra keys: LoRA, cache salt, images);
- no client log. From the events alone a capture gives only what the
  server stored: blocks stored, distinct blocks, evictions, re-stores after
  eviction (misses an infinite cache would have served), the peak of cached
  blocks (`events_summary`). Prefix hits publish no event, so no hit rate
  and no per-request reuse can be computed without the requests.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from prefix_study.io import sha256_file
from prefix_study.traces.formats import ExternalRequest, TraceFormatError, register_trace_format
from prefix_study.traces.schema import TRACE_SCHEMA

#: vLLM's default block size on GPUs; a CPU server runs 32 or more (set
#: `workloads.<name>.block_tokens`).
DEFAULT_BLOCK_TOKENS = 16


def events_summary(events: Any) -> dict[str, Any]:
    """What the events alone say (polars frame of a capture's events)."""
    import polars as pl

    stored = events.filter(pl.col("event") == "stored")
    distinct = stored["block_hash"].n_unique()
    resident, peak = set(), 0
    for kind, h in events.sort("seq").select("event", "block_hash").rows():
        if kind == "stored":
            resident.add(h)
        elif kind == "removed":
            resident.discard(h)
        else:
            resident.clear()
        peak = max(peak, len(resident))
    return {
        "blocks_stored": stored.height, "distinct_blocks_stored": distinct,
        "blocks_removed": int((events["event"] == "removed").sum()),
        "cleared": int((events["event"] == "cleared").sum()),
        "restored_after_eviction": stored.height - distinct,
        "peak_cached_blocks": peak, "cached_at_end": len(resident),
    }


def load_capture(manifest_path: Path) -> tuple[dict[str, Any], Any]:
    """The manifest and the events, checked complete; refuses a capture with gaps."""
    import polars as pl

    manifest_path = Path(manifest_path)
    try:
        manifest = json.loads(manifest_path.read_text())
    except (OSError, ValueError) as e:
        raise TraceFormatError(f"{manifest_path}: not a capture manifest ({e})") from e
    where = manifest_path.parent
    for role, entry in (manifest.get("files") or {}).items():
        path = where / entry["path"]
        if not path.is_file() or sha256_file(path) != entry["sha256"]:
            raise TraceFormatError(f"{manifest_path}: {role} file {path} is missing or changed since the capture")
    if "events" not in (manifest.get("files") or {}):
        raise TraceFormatError(f"{manifest_path}: the manifest names no events file")
    events = pl.read_parquet(where / manifest["files"]["events"]["path"])
    if manifest.get("gaps"):
        raise TraceFormatError(
            f"{manifest_path}: the capture missed KV-event batches {manifest['gaps']} (sequence numbers "
            "neither received nor returned by the replay endpoint); a hit rate over an incomplete "
            "event stream would be wrong, so the capture is refused")
    seqs = events["batch_seq"].unique().sort().to_list()
    first, last = manifest.get("first_seq"), manifest.get("last_seq")
    if seqs and (seqs[0] != first or seqs[-1] != last or len(seqs) != seqs[-1] - seqs[0] + 1):
        # Batches without events cannot exist (vLLM publishes only non-empty
        # batches), so every sequence number in [first, last] must be present.
        missing = sorted(set(range(seqs[0], seqs[-1] + 1)) - set(seqs))[:20]
        raise TraceFormatError(f"{manifest_path}: event batches are not contiguous (missing {missing}); "
                               "refused as an incomplete capture")
    return manifest, events


def _client_records(path: Path, max_requests: int | None, skip_bad_lines: bool) -> tuple[list[dict], dict]:
    records, bad, lines = [], [], 0
    with path.open(encoding="utf-8") as f:
        for lineno, line in enumerate(f, start=1):
            lines = lineno
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
                for key in ("request_id", "sent_s", "prompt_token_ids", "output_token_ids", "cached_tokens"):
                    if key not in rec:
                        raise ValueError(f"field {key!r} missing")
                records.append(rec)
            except ValueError as e:
                if not skip_bad_lines:
                    raise TraceFormatError(f"{path}:{lineno}: {e}") from e
                bad.append({"line": lineno, "error": str(e)})
    records.sort(key=lambda r: (float(r["sent_s"]), str(r["request_id"])))
    if max_requests is not None:
        records = records[:max_requests]
    return records, {"lines_read": lines, "skipped_lines": len(bad), "skipped": bad[:20]}


def capture_requests(path: Path, workload: str, max_requests: int | None = None,
                     skip_bad_lines: bool = False) -> tuple[list[ExternalRequest], dict[str, Any]]:
    """The client log's requests with their token counts (no block ids: the
    trace comes from `read_capture`), in send order."""
    manifest, _ = load_capture(path)
    entry = (manifest.get("files") or {}).get("client_log")
    if entry is None:
        raise TraceFormatError(f"{path}: the capture has no client log, so no requests")
    records, report = _client_records(Path(path).parent / entry["path"], max_requests, skip_bad_lines)
    t0 = min((float(r["sent_s"]) for r in records), default=0.0)
    return [ExternalRequest(request_id=str(r["request_id"]), time_s=float(r["sent_s"]) - t0,
                            input_length=len(r["prompt_token_ids"]), output_length=len(r["output_token_ids"]),
                            hash_ids=[]) for r in records], report


@register_trace_format("vllm_kv_events", block_tokens=DEFAULT_BLOCK_TOKENS,
                       description="a vLLM server's KV-event capture plus its client log (prefix-study-capture)",
                       whole_input=True, requests=capture_requests)
def read_capture(path: Path, workload: str, max_requests: int | None = None, skip_bad_lines: bool = False,
                 block_tokens: int | None = None) -> tuple[Any, dict[str, Any]]:
    import polars as pl

    manifest, events = load_capture(path)
    summary = events_summary(events)
    log_entry = (manifest.get("files") or {}).get("client_log")
    if log_entry is None:
        raise TraceFormatError(
            f"{path}: the capture has no client log, so no per-request block accesses and no hit rate "
            f"(prefix hits publish no event). From the events alone: {json.dumps(summary)}")
    sizes = events.filter(pl.col("event") == "stored")["block_size"].unique().to_list()
    if len(sizes) > 1:
        raise TraceFormatError(f"{path}: events of several block sizes {sorted(sizes)}")
    bs = int(sizes[0]) if sizes else int(block_tokens or DEFAULT_BLOCK_TOKENS)
    if block_tokens is not None and int(block_tokens) != bs:
        raise TraceFormatError(f"{path}: the server's blocks hold {bs} tokens; set "
                               f"workloads.{workload}.block_tokens={bs} (it is {block_tokens})")
    names: dict[tuple, int] = {}
    ambiguous = 0
    for parent, tokens, h, extra in events.filter(pl.col("event") == "stored").select(
            "parent_block_hash", "token_ids", "block_hash", "extra_keys").rows():
        key = (parent, tuple(tokens))
        if extra or names.setdefault(key, h) != h:
            ambiguous += 1
    if ambiguous:
        raise TraceFormatError(f"{path}: {ambiguous} stored blocks carry extra keys (LoRA, cache salt, "
                               "multimodal) or share parent and tokens with another hash; their accesses "
                               "cannot be named from token ids")
    records, report = _client_records(path.parent / log_entry["path"], max_requests, skip_bad_lines)
    if not records:
        raise TraceFormatError(f"{path}: the client log holds no request")
    t0 = min(float(r["sent_s"]) for r in records)
    # block_id (dense ids) is added by the importer (traces/block_ids.py).
    schema = {**{k: v for k, v in TRACE_SCHEMA.items() if k != "block_id"}, "partial_tail": pl.Boolean}
    cols: dict[str, list] = {k: [] for k in schema}
    unnamed: list[dict[str, Any]] = []
    for r in records:
        prompt, output = list(r["prompt_token_ids"]), list(r["output_token_ids"])
        tokens = prompt + output[:-1]
        n_lookup = (len(prompt) - 1) // bs
        cached = r.get("cached_tokens")
        parent = None
        for pos in range(len(tokens) // bs):
            h = names.get((parent, tuple(tokens[pos * bs:(pos + 1) * bs])))
            if h is None:
                unnamed.append({"request_id": r["request_id"], "position": pos})
                break
            cols["request_id"].append(str(r["request_id"]))
            cols["workload"].append(workload)
            cols["time_s"].append(float(r["sent_s"]) - t0)
            cols["position"].append(pos)
            cols["block_hash"].append(h)
            cols["engine_hit"].append(None if cached is None else pos < int(cached) // bs)
            cols["lookup"].append(pos < n_lookup)
            cols["partial_tail"].append(len(tokens) % bs != 0)
            parent = h
    if unnamed:
        raise TraceFormatError(
            f"{path}: {len(unnamed)} requests have a block no BlockStored event names (first "
            f"{unnamed[:5]}): the capture began after those blocks were cached, or it is not the "
            "capture of this traffic; refused rather than counted as misses")
    frame = pl.DataFrame(cols, schema=schema)
    report.update({
        "kind": "vllm_kv_events", "path": str(path), "workload": workload, "block_tokens": bs,
        "requests": len(records), "max_requests": max_requests, "blocks": frame.height,
        "distinct_blocks": frame["block_hash"].n_unique(), "capture_batches": manifest.get("batches"),
        "capture_first_seq": manifest.get("first_seq"), "capture_last_seq": manifest.get("last_seq"),
        "replayed_batches": manifest.get("replayed_batches"), "gaps": manifest.get("gaps"),
        "events": summary,
    })
    return frame, report
