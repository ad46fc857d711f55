"""`prefix-study-capture`: record a vLLM server's KV events, and send it traffic.

    prefix-study-capture listen --endpoint ipc:///tmp/kv-events --replay-endpoint ipc:///tmp/kv-replay \\
        --out cap --client-log cap/client.jsonl --idle-stop 10
    prefix-study-capture send --base-url http://127.0.0.1:8000/v1 --model NAME \\
        --workload results/workloads/<h>/chat_multi.parquet --client-log cap/client.jsonl

`listen` runs until SIGINT/SIGTERM, `--duration` seconds, or `--idle-stop`
seconds without an event after the first; then it drains the publisher's
replay buffer and writes the capture directory (capture/subscriber.py), the
manifest last. `send` replays a request stream (a workloads-stage Parquet)
through the openai client with the token simulator's scripts as `vllm_xargs`
(the server needs `--logits-processors
prefix_study.engine.simulator:TokenSimulator` for those to force replies;
without it replies are the model's own) and writes the client log.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
import threading
from typing import Sequence

from prefix_study import env


def listen(args: argparse.Namespace) -> None:
    from prefix_study.capture.subscriber import KVEventSubscriber, capture

    stop = threading.Event()

    def on_signal(signum, _frame) -> None:
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, on_signal)
    sub = KVEventSubscriber(args.endpoint, args.replay_endpoint, bind=args.bind, topic=args.topic,
                            from_seq=args.from_seq, drop_seqs=args.test_drop_seq)
    try:
        report = capture(sub, args.out, stop, args.duration, args.idle_stop, args.client_log)
    finally:
        sub.close()
    import polars as pl

    from prefix_study.capture.subscriber import EVENTS_FILE
    from prefix_study.traces.formats.vllm_kv_events import events_summary

    summary = events_summary(pl.read_parquet(f"{args.out}/{EVENTS_FILE}"))
    print(json.dumps({"batches": report.batches, "first_seq": report.first_seq, "last_seq": report.last_seq,
                      "replayed_batches": report.replayed_batches, "gaps": report.gaps,
                      "stopped_by": report.stopped_by, "events": summary}, indent=2))
    if report.gaps:
        print(f"capture INCOMPLETE: missing batches {report.gaps} (no replay); the import will refuse it",
              file=sys.stderr)
        sys.exit(2)


def send(args: argparse.Namespace) -> None:
    import polars as pl

    from prefix_study.capture.client import send_stream, write_client_log
    from prefix_study.engine.server import simulator_request_args

    rows = pl.read_parquet(args.workload).to_dicts()
    records = asyncio.run(send_stream(args.base_url, args.model, rows, simulator_request_args(args.mode),
                                      args.max_in_flight, args.time_scale))
    write_client_log(records, args.client_log)
    prompt = sum(r.prompt_tokens for r in records)
    cached = sum(r.cached_tokens or 0 for r in records)
    print(json.dumps({"requests": len(records), "prompt_tokens": prompt, "cached_tokens": cached,
                      "hit_rate": cached / max(prompt, 1)}))


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="prefix-study-capture", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("listen", help="record a vLLM server's KV events (ZMQ)")
    s.add_argument("--endpoint", required=True, help="the server's kv-events endpoint")
    s.add_argument("--replay-endpoint", default=None, help="its replay_endpoint (gaps are replayed)")
    s.add_argument("--bind", action="store_true",
                   help="bind the endpoint (vLLM connects to tcp://host:port endpoints without '*')")
    s.add_argument("--topic", default="")
    s.add_argument("--from-seq", type=int, default=None,
                   help="first sequence number wanted (0: all the server published; default: from joining)")
    s.add_argument("--out", required=True, help="capture directory")
    s.add_argument("--client-log", default=None, help="the traffic's client log, copied in at the end")
    s.add_argument("--duration", type=float, default=None, help="stop after this many seconds")
    s.add_argument("--idle-stop", type=float, default=None,
                   help="stop after this many seconds without an event (after the first)")
    s.add_argument("--test-drop-seq", type=int, action="append", default=[],
                   help=argparse.SUPPRESS)  # test flag: discard this batch on receipt
    s.set_defaults(fn=listen)
    s = sub.add_parser("send", help="send a request stream through the openai client, log it")
    s.add_argument("--base-url", required=True, help="e.g. http://127.0.0.1:8000/v1")
    s.add_argument("--model", required=True, help="the served model name")
    s.add_argument("--workload", required=True, help="a workloads-stage request stream (Parquet)")
    s.add_argument("--client-log", required=True)
    s.add_argument("--mode", default="script", help="token simulator mode (script, echo, model)")
    s.add_argument("--max-in-flight", type=int, default=16)
    s.add_argument("--time-scale", type=float, default=0.0,
                   help="real seconds per workload second (0: no waiting)")
    s.set_defaults(fn=send)
    return p


def main(argv: Sequence[str] | None = None) -> None:
    env.apply()
    args = build_parser().parse_args(argv)
    args.fn(args)


if __name__ == "__main__":
    main()
