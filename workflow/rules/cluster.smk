from prefix_study.cluster.stage import cluster_traces

CLUSTER_TRACES = cluster_traces(CFG)
CLUSTER_ENGINE = [(w, P.engine_source_block_size(b)) for w, b in CLUSTER_TRACES if w in P.engine_workloads]


rule cluster:
    """N replicas behind each router: cluster hit rate, load imbalance, TTFT (cost model)."""
    input:
        cfg=P.stage_config("cluster"),
        traces=[P.trace(w, b) for w, b in CLUSTER_TRACES],
        engine=[P.engine_file(w, b, "requests.parquet") for w, b in CLUSTER_ENGINE],
    output:
        table=P.cluster("cluster.parquet"),
        md=report(P.cluster("cluster.md"), caption=str(caption_path("cluster")), category="Tables"),
        figure=report(P.cluster("cluster_scaling.png"), caption=str(caption_path("cluster_scaling")),
                      category="Figures"),
        svg=P.cluster("cluster_scaling.svg"),
    params:
        traces=" ".join(f"--trace {w}={P.trace(w, b)}" for w, b in CLUSTER_TRACES),
        engine=" ".join(f"--engine-requests {w}={P.engine_file(w, b, 'requests.parquet')}"
                        for w, b in CLUSTER_ENGINE),
        out=str(P.stage("cluster")),
    resources:
        mem_mb=4000,
    log:
        P.log("cluster", "cluster"),
    benchmark:
        P.benchmark("cluster", "cluster")
    shell:
        "{STAGE} cluster --config {input.cfg} {params.traces} {params.engine} --out-dir {params.out} "
        "--no-progress > {log} 2>&1"
