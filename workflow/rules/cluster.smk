from prefix_study.cluster.capacity import cluster_traces

CLUSTER_TRACES = {w: P.trace(w, b) for w, b in cluster_traces(CFG)}
#: The engine's requests of ShareGPT workloads (token counts, conversations).
CLUSTER_ENGINE_REQUESTS = {w: P.engine_file(w, P.engine_source_block_size(b), "requests.parquet")
                           for w, b in cluster_traces(CFG) if w in P.engine_workloads}


rule cluster:
    """N replicas behind each router: cluster hit rate, load imbalance, TTFT (cost model)."""
    input:
        cfg=P.stage_config("cluster"),
        traces=list(CLUSTER_TRACES.values()),
        engine_requests=list(CLUSTER_ENGINE_REQUESTS.values()),
    output:
        table=P.cluster("cluster.parquet"),
        md=report(P.cluster("cluster.md"), caption=str(caption_path("cluster")), category="Tables"),
        # With a tier below GPU memory: a shared pool against per-replica tiers.
        **({"tiers": P.cluster("cluster_tiers.parquet"),
            "tiers_md": report(P.cluster("cluster_tiers.md"), caption=str(caption_path("cluster_tiers")),
                               category="Tables")} if P.tiers_run else {}),
    params:
        stage="cluster",
        traces=CLUSTER_TRACES,
        engine_requests=CLUSTER_ENGINE_REQUESTS,
    resources:
        mem_mb=4000,
    log:
        P.log("cluster", "cluster"),
    benchmark:
        P.benchmark("cluster", "cluster")
    script:
        STAGE_SCRIPT
