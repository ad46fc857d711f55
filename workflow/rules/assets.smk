rule model_assets:
    """Real GPT-2 tokenizer + random-weight GPT-2-architecture model, offline."""
    input:
        cfg=P.stage_config("assets"),
    output:
        directory(P.stage("assets") / "model"),
    params:
        model=lambda w: OmegaConf.to_container(CFG.engine.model),
    log:
        P.stage("assets") / "logs/model_assets.log",
    benchmark:
        P.stage("assets") / "benchmarks/model_assets.tsv"
    shell:
        "{STAGE} assets --config {input.cfg} --out {output} > {log} 2>&1"
