rule model_assets:
    """Real GPT-2 tokenizer + random-weight GPT-2-architecture model, offline."""
    input:
        cfg=P.stage_config("assets"),
    output:
        directory(P.model_dir),
    log:
        P.log("assets", "model_assets"),
    benchmark:
        P.benchmark("assets", "model_assets")
    shell:
        "{STAGE} assets --config {input.cfg} --out {output} > {log} 2>&1"
