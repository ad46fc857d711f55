# The two entry points of the README. Set-up runs only when pyproject.toml
# or the install script changed since the last install.
VENV ?= .venv
CORES ?= 2
SNAKEMAKE_ARGS ?=
export HF_HUB_OFFLINE = 1
export TRANSFORMERS_OFFLINE = 1
export VLLM_ENABLE_V1_MULTIPROCESSING = 0
export PYTHONHASHSEED = 0

.PHONY: setup pipeline test report clean
setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml scripts/install.sh
	bash scripts/install.sh $(VENV)
	touch $@

pipeline: setup
	$(VENV)/bin/snakemake --profile workflow/profiles/local --cores $(CORES) $(SNAKEMAKE_ARGS)

test: setup
	$(VENV)/bin/python -m pytest $(PYTEST_ARGS)

clean:
	find results -mindepth 1 -maxdepth 1 ! -name README.md -exec rm -rf {} +
	rm -rf .snakemake
