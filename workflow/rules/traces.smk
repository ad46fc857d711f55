ENGINE_BLOCK_SIZES = "|".join(str(b) for b in P.engine_block_sizes)
ENGINE_WORKLOADS = "|".join(P.engine_workloads) or "^$"


def trace_inputs(w):
    """The engine run a trace derives from, or the file an external trace is imported from."""
    if w.workload in P.external_workloads:
        # The file's content is in the stage hash (a new file, a new stage
        # directory), so its mtime alone need not trigger a rerun.
        return {"cfg": P.stage_config("traces"), "source": ancient(P.trace_file(w.workload))}
    bs = P.engine_source_block_size(int(w.bs))
    return {"cfg": P.stage_config("traces"),
            **{k: P.engine_file(w.workload, bs, f) for k, f in
               (("requests", "requests.parquet"), ("kv_events", "kv_events.parquet"), ("meta", "run.json"))}}


def engine_dir_param(w):
    """The engine run a trace derives from (None: imported from its file)."""
    if w.workload in P.external_workloads:
        return None
    return P.engine_dir(w.workload, P.engine_source_block_size(int(w.bs)))


# A trace at an engine block size also writes that engine run's per-block
# records (the run index lists them); every other trace comes from block_trace.
ruleorder: engine_block_trace > block_trace


rule block_trace:
    """Block-access trace at one block size, hashed with vLLM's chained block hash
    (or imported from an external trace); checked against the engine's KV events."""
    input:
        unpack(trace_inputs),
    output:
        trace=P.trace("{workload}", "{bs}"),
        check=P.trace_check("{workload}", "{bs}"),
    params:
        stage="traces",
        run=lambda w: w.workload,
        block_size=lambda w: int(w.bs),
        engine_dir=engine_dir_param,
    resources:
        mem_mb=4000,
    log:
        P.log("traces", "{workload}_b{bs}"),
    benchmark:
        P.benchmark("traces", "{workload}_b{bs}")
    script:
        STAGE_SCRIPT


use rule block_trace as engine_block_trace with:
    output:
        trace=P.trace("{workload}", "{bs}"),
        check=P.trace_check("{workload}", "{bs}"),
        blocks=P.trace_blocks("{workload}", "{bs}"),
    wildcard_constraints:
        workload=ENGINE_WORKLOADS,
        bs=ENGINE_BLOCK_SIZES,


rule engine_capacity_trace:
    """Block trace of one run of the engine capacity sweep (a workload or the
    mixed stream), checked against that run's KV events like every engine trace."""
    input:
        cfg=P.stage_config("traces"),
        requests=P.engine_capacity_dir("{run}", "{bs}", "{cap}") / "requests.parquet",
        kv_events=P.engine_capacity_dir("{run}", "{bs}", "{cap}") / "kv_events.parquet",
        meta=P.engine_capacity_dir("{run}", "{bs}", "{cap}") / "run.json",
    output:
        trace=P.engine_capacity_trace("{run}", "{bs}", "{cap}"),
        check=P.engine_capacity_trace("{run}", "{bs}", "{cap}").with_suffix(".check.json"),
    params:
        stage="traces",
        run=lambda w: w.run,
        block_size=lambda w: int(w.bs),
        engine_dir=lambda w: P.engine_capacity_dir(w.run, w.bs, w.cap),
    wildcard_constraints:
        run="[A-Za-z0-9_]+",
    resources:
        mem_mb=4000,
    log:
        P.log("traces", "c{cap}_{run}_b{bs}"),
    benchmark:
        P.benchmark("traces", "c{cap}_{run}_b{bs}")
    script:
        STAGE_SCRIPT
