# The two entry points of the README. Set-up runs only when pyproject.toml
# or the install script changed since the last install.
VENV ?= .venv
CORES ?= 2
SNAKEMAKE_ARGS ?=
# The run-time environment (offline hub, in-process vLLM, PYTHONHASHSEED) is
# set by src/prefix_study/env.py, which the Snakefile and the tests apply.

.PHONY: setup pipeline test test-fast clean
setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml scripts/install.sh
	bash scripts/install.sh $(VENV)
	touch $@

pipeline: setup
	@# a run killed with SIGKILL leaves Snakemake's lock: remove it if no run holds it
	$(VENV)/bin/prefix-study --clear-stale-lock
	$(VENV)/bin/snakemake --profile workflow/profiles/local --cores $(CORES) $(SNAKEMAKE_ARGS)

# Everything (CI): the pipeline tests share one run of the whole DAG (tests/conftest.py).
test: setup
	$(VENV)/bin/python -m pytest -n 2 --dist loadfile $(PYTEST_ARGS)

# The inner loop: every stage library, no vLLM, no Snakemake, no SLURM (goal: under 60 s;
# 385 tests: 47.0-58.1 s with a warm numba cache, 107 s cold, idle machine 2026-12-04. See README.)
test-fast: setup
	$(VENV)/bin/python -m pytest -n 2 --dist loadfile -m "not engine and not slurm and not pipeline" $(PYTEST_ARGS)

clean:
	find results -mindepth 1 -maxdepth 1 ! -name README.md -exec rm -rf {} +
	rm -rf .snakemake
