"""Demo of the ShareGPT client: `python -m prefix_study.workloads [overrides...]`.

Prints the dataset load report, then the first few single-turn events
(chat_single) and the first few multi-turn events (chat_multi), in arrival order.
"""

from __future__ import annotations

import argparse
import textwrap

from prefix_study.config.compose import compose_config
from prefix_study.workloads.client import RequestEvent
from prefix_study.workloads.request_stream import build_workload_events
from prefix_study.workloads.sharegpt import load_sharegpt


def describe(event: RequestEvent, width: int = 100) -> str:
    snippet = event.prompt_text.replace("\n", "\\n")
    if len(snippet) > width:
        snippet = "..." + snippet[-(width - 3):]  # the end shows the newest message
    return (
        f"t={event.arrival_s:8.3f}s  {event.conversation_id}  turn={event.turn_index}  "
        f"mode={event.mode:<6}  think={event.think_time_s:6.2f}s  "
        f"prompt={len(event.prompt_token_ids):5d} tok  reply={len(event.scripted_output_token_ids):3d} tok\n"
        + textwrap.indent(snippet, "    ")
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=4, help="events to print per mode")
    parser.add_argument("--single", default="chat_single", help="single-turn workload name")
    parser.add_argument("--multi", default="chat_multi", help="multi-turn workload name")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. seed=1")
    args = parser.parse_args(argv)
    cfg = compose_config(args.overrides)
    print(load_sharegpt(cfg).report.summary())
    for title, name in (("single-turn", args.single), ("multi-turn", args.multi)):
        print(f"\n== {title} events ({name}) ==")
        for event in build_workload_events(cfg, name)[: args.count]:
            print(describe(event))


if __name__ == "__main__":
    main()
