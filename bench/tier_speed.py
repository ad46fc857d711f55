"""Tier replay speed on the Mooncake conversation trace.

The 12,031 requests of Mooncake's conversation trace (512-token blocks) go
through three tiers: GPU memory (vLLM's LRU free queue, --gpu-gib), host DRAM
(--dram-gib, write_through, every online policy of the registry in turn) and
a local SSD (--ssd-gib, LRU, write_back of DRAM's evictions), sizes in GiB of
Llama-3.1-8B's KV cache on an H100 (the config's defaults), load_policy
`always`. Each policy's tier loop is first compiled (or loaded from numba's
cache) on the first 200 requests, outside the timing. Prints, per policy,
CPU seconds, accesses/s, the ratio against a single-tier replay (GPU memory
alone: today's `prefix` LRU replay, timed in the same run) and the tokens
each tier served; then the total over all policies (target: < 10 s).

    PYTHONPATH=src python bench/tier_speed.py [--trace PATH] [--policies lru arc ...]
"""

from __future__ import annotations

import argparse
import time

TARGET_TOTAL_S = 10.0


def main() -> None:
    from prefix_study.config.compose import compose_config
    from prefix_study.cost import CostModel, HardwareProfile, ModelProfile
    from prefix_study.replay import encode_trace, replay_hit_mask
    from prefix_study.replay.policies import online_policy_names
    from prefix_study.tiers.replay import tier_replay
    from prefix_study.tiers.spec import hierarchy
    from prefix_study.traces.importers import import_trace

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trace", default="/work/shared/data/mooncake/conversation_trace.jsonl")
    ap.add_argument("--gpu-gib", type=float, default=64.0)
    ap.add_argument("--dram-gib", type=float, default=256.0)
    ap.add_argument("--ssd-gib", type=float, default=1024.0)
    ap.add_argument("--policies", nargs="+", default=None, help="DRAM policies (default: every online policy)")
    args = ap.parse_args()
    policies = args.policies or online_policy_names()

    tiers = ("tiers=mooncake", "tiers.tiers.1.links=[pcie]", "tiers.tiers.1.scope=per_replica",
             "tiers.tiers.2.links=[nvme,pcie]", "tiers.tiers.2.scope=per_replica",
             f"tiers.tiers.1.capacity={args.dram_gib}", f"tiers.tiers.2.capacity={args.ssd_gib}")
    frame, _ = import_trace("mooncake", args.trace, "mooncake")
    trace = encode_trace(frame)
    first = frame["request_id"].unique(maintain_order=True).head(200)
    warm = encode_trace(frame.filter(frame["request_id"].is_in(first.to_list())))
    cfg = compose_config(list(tiers))
    model, hardware = ModelProfile.from_config(cfg.model), HardwareProfile.from_config(cfg.hardware)
    cost_model = CostModel.from_config(cfg)
    gpu_blocks = int(args.gpu_gib * 2**30 // model.kv_bytes_per_block(512))
    print(f"{trace.accesses:,} accesses, {trace.num_requests:,} requests; GPU {args.gpu_gib} GiB = {gpu_blocks} "
          f"blocks, DRAM {args.dram_gib} GiB, SSD {args.ssd_gib} GiB ({model.name}, {hardware.name})", flush=True)

    replay_hit_mask(warm, "lru", gpu_blocks, "prefix")
    c0 = time.process_time()
    replay_hit_mask(trace, "lru", gpu_blocks, "prefix")
    single = time.process_time() - c0
    print(f"single tier (GPU memory, prefix LRU): {single:.3f} s, {trace.accesses / single:,.0f} accesses/s")

    print(f"{'DRAM policy':12s} {'cpu s':>7s} {'accesses/s':>12s} {'x single':>8s} {'gpu tok':>12s} "
          f"{'dram tok':>12s} {'ssd tok':>12s} {'recomputed':>12s}")
    total = 0.0
    for policy in policies:
        h = hierarchy(compose_config([*tiers, f"tiers.tiers.1.policy={policy}"]).tiers, hardware, model, 512)
        tier_replay(warm, h, "lru", gpu_blocks, cost_model)  # compile or load the cache
        c0 = time.process_time()
        res = tier_replay(trace, h, "lru", gpu_blocks, cost_model)
        cpu = time.process_time() - c0
        total += cpu
        tok = res.served_tokens()
        print(f"{policy:12s} {cpu:7.3f} {trace.accesses / cpu:12,.0f} {cpu / single:8.2f} {tok['gpu']:12,d} "
              f"{tok['dram_pool']:12,d} {tok['ssd_pool']:12,d} {res.recomputed_tokens():12,d}", flush=True)
    print(f"total over {len(policies)} DRAM policies: {total:.2f} s (target < {TARGET_TOTAL_S:.0f} s): "
          f"{'met' if total < TARGET_TOTAL_S else 'NOT met'}")


if __name__ == "__main__":
    main()
