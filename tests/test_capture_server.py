"""engine.mode=server and live capture: a real `vllm serve` (CPU), the real
openai client, the server's ZMQ KV events (engine/server.py, capture/,
traces/formats/vllm_kv_events.py).

One server for the module (vLLM's start-up is the cost): block size 32, 40
blocks, max_model_len 640, max_num_seqs 16, the in-process engine's settings
in tests/test_engine_batching.py (so a full session builds that engine once).
The last test stops it and checks nothing is left."""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from pathlib import Path

import polars as pl
import pytest

from prefix_study.config.schema import EngineConfig
from prefix_study.engine import check_request_stream, drive
from prefix_study.engine.runtime import EngineSpec
from prefix_study.traces.derive import check_server_consistency, derive_block_trace

pytestmark = pytest.mark.engine

BLOCK, CAPACITY, MAX_LEN = 32, 40, 640
WORKLOAD_OVERRIDES = [
    "workloads.chat_multi.num_conversations=4", "workloads.chat_multi.max_turns=3",
    "workloads.chat_multi.max_prompt_tokens=400", "workloads.chat_multi.max_reply_tokens=16",
    "workloads.chat_multi.arrival_rate=0.05", "workloads.chat_multi.think_time.distribution=constant",
    "workloads.chat_multi.think_time.mean_s=20",
    "workloads.qa.num_conversations=4", "workloads.qa.context_tokens=160", "workloads.qa.num_contexts=2",
    "workloads.qa.max_question_tokens=32", "workloads.qa.max_reply_tokens=8", "workloads.qa.arrival_rate=0.5",
    "workloads.summarization.num_conversations=4", "workloads.summarization.min_document_tokens=200",
    "workloads.summarization.max_prompt_tokens=400", "workloads.summarization.max_reply_tokens=8",
]


def engine_cfg(mode: str) -> EngineConfig:
    return EngineConfig(capacity_blocks=CAPACITY, max_model_len=MAX_LEN, max_num_seqs=16,
                        max_num_batched_tokens=MAX_LEN, mode=mode)


@pytest.fixture(scope="module")
def streams(tmp_path_factory):
    """chat_multi, qa (and summarization for the concurrent run) from the
    project's builders (ShareGPT), tiny."""
    from prefix_study.config.compose import compose_config
    from prefix_study.workloads.request_stream import build_workload_file

    cfg = compose_config(WORKLOAD_OVERRIDES)
    root = tmp_path_factory.mktemp("streams")
    return {w: pl.read_parquet(build_workload_file(cfg, w, root / f"{w}.parquet"))
            for w in ("chat_multi", "qa", "summarization")}


@pytest.fixture(scope="module")
def server(model_dir, tmp_path_factory):
    from prefix_study.engine.server import vllm_server

    spec = EngineSpec.from_config(engine_cfg("server"), model_dir, BLOCK)
    stack = contextlib.ExitStack()
    srv = stack.enter_context(vllm_server(spec, tmp_path_factory.mktemp("server") / "server.log"))
    yield {"server": srv, "spec": spec, "stop": stack.close}
    stack.close()


@pytest.fixture(scope="module")
def server_runs(server, streams, tmp_path_factory):
    """Server runs through the engine stage's server path: each workload one
    request at a time, and both workloads at once with up to 16 in flight at
    a binding capacity."""
    from prefix_study.engine import server as server_mode

    root = tmp_path_factory.mktemp("engine")
    one_by_one = {w: streams[w] for w in ("chat_multi", "qa")}
    seq = {w: root / w / f"b{BLOCK}" for w in one_by_one}
    metas = server_mode.run_workloads(engine_cfg("server"), server["spec"], one_by_one, seq, progress=False,
                                      server=server["server"], max_in_flight=1)
    both = {"both": pl.concat(list(streams.values()), how="diagonal_relaxed")}
    concurrent = {"both": root / "both" / f"b{BLOCK}"}
    metas.update(server_mode.run_workloads(engine_cfg("server"), server["spec"], both, concurrent,
                                           progress=False, server=server["server"], max_in_flight=16))
    return {**seq, **concurrent}, metas


def _read(run_dir: Path):
    return (pl.read_parquet(run_dir / "requests.parquet"), pl.read_parquet(run_dir / "kv_events.parquet"),
            json.loads((run_dir / "run.json").read_text()))


@pytest.mark.parametrize("workload", ["chat_multi", "qa"])
def test_server_equals_in_process_one_request_at_a_time(server_runs, streams, engine_factory, workload):
    dirs, _ = server_runs
    requests, events, meta = _read(dirs[workload])
    engine = engine_factory(BLOCK, capacity_blocks=CAPACITY, max_model_len=MAX_LEN, max_num_seqs=16)
    res = drive(engine, check_request_stream(streams[workload], MAX_LEN, "script").frame, progress=False)
    local = res.requests
    # Arrivals far apart: the in-process engine also ran them one by one, in the order sent.
    assert local.sort("scheduled_step")["request_id"].to_list() == requests["request_id"].to_list()
    both = requests.join(local, on="request_id", suffix="_local")
    assert both.height == local.height == streams[workload].height
    assert both["num_cached_tokens"].to_list() == both["num_cached_tokens_local"].to_list()
    assert both["output_token_ids"].to_list() == both["output_token_ids_local"].to_list()
    assert requests["num_cached_tokens"].sum() > 0  # reuse happened, not 0 == 0
    key = ["event", "block_hash", "parent_block_hash"]
    assert events.select(key).equals(res.kv_events.select(key))
    assert meta["none_hash_seed"] == engine.none_hash_seed()


def test_concurrent_server_run_passes_the_trace_check(server_runs):
    from prefix_study.replay.per_request import per_request_hits

    dirs, metas = server_runs
    requests, events, meta = _read(dirs["both"])
    trace = derive_block_trace(requests, BLOCK, meta["none_hash_seed"], engine_block_size=BLOCK)
    report = check_server_consistency(requests, events, trace, BLOCK)
    assert report["ok"], report
    assert events.filter(pl.col("event") == "removed").height > 0, "capacity did not bind"
    # The first turns went out together: the server batched them.
    first_turns = requests.filter(pl.col("turn_index") == 0).sort("arrival_s")
    assert (first_turns["arrival_s"].shift(-1) < first_turns["finished_s"]).any()
    sequential = per_request_hits(trace, CAPACITY - 1, "lru", "prefix")["hit_blocks"].sum() * BLOCK
    prompt = requests["num_prompt_tokens"].sum()
    print(f"\nserver run b{BLOCK} c{CAPACITY}: engine {requests['num_cached_tokens'].sum() / prompt:.4f} "
          f"| batched replay n/a (no schedule from a server) | sequential replay {sequential / prompt:.4f} "
          f"| {requests.height} requests, {events.filter(pl.col('event') == 'removed').height} evictions")
    assert pl.read_parquet(dirs["both"] / "schedule.parquet").height == 0
    assert meta["engine_mode"] == "server" and "schedule.parquet" in meta["server"]["unknown"]
    # The traces stage derives and checks it (with the server check) as it would any engine run.
    from prefix_study.traces import stage as traces_stage

    out = dirs["both"].parent / "traces"
    staged = traces_stage.run("both", None, BLOCK, dirs["both"], out / "b32.parquet", out / "b32.check.json",
                              out / "b32.blocks.parquet")
    assert staged["ok"] and staged["check"].startswith("server")
    assert pl.read_parquet(out / "b32.parquet").equals(trace)


def test_capture_import_gives_the_derived_traces_hit_rates(server_runs):
    from prefix_study.replay.per_request import per_request_hits
    from prefix_study.traces.importers import import_trace

    dirs, _ = server_runs
    requests, _, meta = _read(dirs["both"])
    derived = derive_block_trace(requests, BLOCK, meta["none_hash_seed"], engine_block_size=BLOCK)
    captured, report = import_trace("vllm_kv_events", dirs["both"] / "capture" / "capture.json", "both",
                                    block_tokens=BLOCK)
    assert report["gaps"] == [] and report["requests"] == requests.height
    for capacity in (10**6, CAPACITY - 1):  # infinite, and LRU at the server's capacity
        rates = []
        for trace in (derived, captured):
            per = per_request_hits(trace, capacity, "lru", "prefix")
            rates.append(per["hit_blocks"].sum() / per["lookup_blocks"].sum())
        assert rates[0] == rates[1] and rates[0] > 0
    cols = ["request_id", "position", "block_hash", "lookup", "engine_hit", "partial_tail"]
    assert captured.select(cols).equals(derived.select(cols))
    # Through the traces stage, as `+workload@workloads.both=vllm_kv_events` runs it.
    from prefix_study.config.schema import ExternalTraceConfig
    from prefix_study.traces import stage as traces_stage

    out = dirs["both"].parent / "imported"
    wl = ExternalTraceConfig(kind="vllm_kv_events", trace_path=str(dirs["both"] / "capture" / "capture.json"),
                             block_tokens=BLOCK)
    staged = traces_stage.run("both", wl, BLOCK, None, out / "b32.parquet", out / "b32.check.json")
    assert staged["ok"] and pl.read_parquet(out / "b32.parquet").select(cols).equals(derived.select(cols))
    with pytest.raises(ValueError, match="block_tokens=32"):
        import_trace("vllm_kv_events", dirs["both"] / "capture" / "capture.json", "both", block_tokens=16)


def next_seq(srv) -> int:
    """The next KV-event sequence number the server's publisher will use."""
    from prefix_study.capture.subscriber import KVEventSubscriber
    from prefix_study.engine.server import _published_so_far

    probe = KVEventSubscriber(srv.events_endpoint, srv.replay_endpoint)
    try:
        return _published_so_far(probe)
    finally:
        probe.close()


def _capture_some_traffic(server, streams, out: Path, replay: bool, drop_first: bool):
    """A capture (capture.capture) of two requests, dropping its first batch."""
    import asyncio

    from prefix_study.capture.client import send_stream, write_client_log
    from prefix_study.capture.subscriber import KVEventSubscriber, capture
    from prefix_study.engine.server import SERVED_MODEL, simulator_request_args

    srv = server["server"]
    srv.post("/reset_prefix_cache")
    start = next_seq(srv)
    sub = KVEventSubscriber(srv.events_endpoint, srv.replay_endpoint if replay else None, from_seq=start,
                            drop_seqs=[start] if drop_first else [])
    stop = threading.Event()
    log = out / "client.jsonl"
    result = {}
    worker = threading.Thread(target=lambda: result.update(report=capture(sub, out, stop, client_log=log)))
    worker.start()
    try:
        rows = streams["qa"].head(2).to_dicts()
        records = asyncio.run(send_stream(srv.base_url, SERVED_MODEL, rows, simulator_request_args("script"),
                                          1, progress=False))
        write_client_log(records, str(log))
        # The server publishes a step's KV events after its responses may have
        # gone out: stop the capture only once it has seen every batch published
        # by now (stopped at once, it missed them all in one CI run).
        end = next_seq(srv)
        deadline = time.monotonic() + 30
        while sub.highest_seen < end - 1 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        stop.set()
        worker.join()
        sub.close()
    return result["report"]


def test_a_dropped_event_is_replayed_or_refused(server, streams, tmp_path):
    from prefix_study.traces.importers import TraceFormatError, import_trace

    replayed = _capture_some_traffic(server, streams, tmp_path / "replayed", replay=True, drop_first=True)
    assert replayed.dropped_for_test and replayed.gaps == [] and replayed.replayed_batches >= 1
    frame, _ = import_trace("vllm_kv_events", tmp_path / "replayed" / "capture.json", "qa", block_tokens=BLOCK)
    assert frame.height > 0
    lost = _capture_some_traffic(server, streams, tmp_path / "lost", replay=False, drop_first=True)
    assert lost.dropped_for_test and lost.gaps == [[lost.dropped_for_test[0], lost.dropped_for_test[0]]]
    manifest = json.loads((tmp_path / "lost" / "capture.json").read_text())
    assert manifest["complete"] is False
    with pytest.raises(TraceFormatError, match="missed KV-event batches"):
        import_trace("vllm_kv_events", tmp_path / "lost" / "capture.json", "qa", block_tokens=BLOCK)
    # Without the client log: refused, saying what the events alone give.
    manifest = json.loads((tmp_path / "replayed" / "capture.json").read_text())
    manifest["files"].pop("client_log")
    (tmp_path / "replayed" / "events_only.json").write_text(json.dumps(manifest))
    with pytest.raises(TraceFormatError, match="no client log.*blocks_stored"):
        import_trace("vllm_kv_events", tmp_path / "replayed" / "events_only.json", "qa", block_tokens=BLOCK)


def test_zz_no_server_process_or_port_is_left(server):
    """Stops the module's server (the fixture would at teardown) and checks
    the process group is gone and the port closed."""
    from prefix_study.engine.server import port_open

    srv = server["server"]
    pgid = srv.process.pid  # start_new_session: the group id is the server's pid
    server["stop"]()
    assert srv.process.poll() is not None
    with pytest.raises(ProcessLookupError):
        os.killpg(pgid, 0)
    assert not port_open(srv.port)
    leftovers = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                cmd = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if "vllm.entrypoints.openai.api_server" in cmd and f"--port {srv.port}" in cmd:
                leftovers.append(proc.name)
    assert not leftovers
