rule assets:
    """Real GPT-2 tokenizer + random-weight GPT-2-architecture model (config
    `engine.model`: the model vLLM runs), offline."""
    input:
        cfg=P.stage_config("assets"),
    output:
        model=directory(P.model_dir),
    params:
        stage="assets",
    log:
        P.log("assets", "assets"),
    benchmark:
        P.benchmark("assets", "assets")
    script:
        STAGE_SCRIPT
