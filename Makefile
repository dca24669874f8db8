# `make run` and `make test` set everything up first; `make setup` is safe to repeat.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.setup-stamp
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: setup run test lint bench postgres

setup: $(STAMP)

# llama-cpp-python compiles llama.cpp when it installs. Compiled for the building machine's
# own CPU (its default), it uses Intel's AMX units where the CPU has them, and that code
# crashes in the model's first decode (llama.cpp issue 20824). On an x86-64 CPU with AVX2 it
# is compiled here for the AVX2 level instead; elsewhere for the CPU itself (no AMX there).
# The wheel is kept outside the checkout under a name made of the version (pyproject.toml's
# pin), the machine type and a hash of the flags, so fresh clones reuse it and other flags
# build anew: pip's own cache keys wheels by source only and would hand back another build.
# A wheel is built aside and moved into place whole, so an interrupted build leaves none.
LLAMA_CPP_VERSION := $(shell sed -n 's/.*"llama-cpp-python==\([^"]*\)".*/\1/p' pyproject.toml)
ARCH := $(shell uname -m)
ifeq ($(ARCH)-$(shell grep -qw avx2 /proc/cpuinfo 2>/dev/null && echo avx2),x86_64-avx2)
LLAMA_CPP_CMAKE_ARGS := -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON
else
LLAMA_CPP_CMAKE_ARGS :=
endif
LLAMA_CPP_FLAGS_HASH := $(shell echo "$(LLAMA_CPP_CMAKE_ARGS)" | sha256sum | cut -c1-12)
LLAMA_CPP_WHEELS := $(HOME)/.cache/threadline/llama-cpp-python-$(LLAMA_CPP_VERSION)-$(ARCH)-$(LLAMA_CPP_FLAGS_HASH)

# The tests' MCP sample needs azure-ai-agents 1.2 (the first with `McpTool`), the rest of the
# suite the 1.1.0 that pyproject.toml pins: one environment cannot hold both, so 1.2 goes into a
# folder of its own that `tests/api/test_azure_tools.py` puts first on the sample's PYTHONPATH.
# Without its dependencies: it needs only azure-core, isodate and typing-extensions, as 1.1.0
# does, and the venv has them. The folder is made anew, so no file of another version stays.
AZURE_AGENTS_1_2 := $(VENV)/azure-ai-agents-1.2
AZURE_AGENTS_1_2_VERSION := 1.2.0b6

# The samples of the pinned azure-ai-projects, from its source package (the wheel has none),
# which `tests/api/test_foundry_samples.py` runs unchanged against the service.
AZURE_AI_PROJECTS_VERSION := $(shell sed -n 's/.*"azure-ai-projects==\([^"]*\)".*/\1/p' pyproject.toml)
PROJECTS_SAMPLES := $(VENV)/azure-ai-projects-samples

$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=24"
	ls $(LLAMA_CPP_WHEELS)/*.whl >/dev/null 2>&1 || { \
		rm -rf $(LLAMA_CPP_WHEELS).building && \
		CMAKE_ARGS="$(LLAMA_CPP_CMAKE_ARGS)" $(BIN)/python -m pip wheel --quiet --no-deps \
			--no-cache-dir --no-binary llama-cpp-python --wheel-dir $(LLAMA_CPP_WHEELS).building \
			"llama-cpp-python==$(LLAMA_CPP_VERSION)" && \
		mv $(LLAMA_CPP_WHEELS).building $(LLAMA_CPP_WHEELS); }
	$(BIN)/python -m pip install --quiet --force-reinstall --no-deps $(LLAMA_CPP_WHEELS)/*.whl
	$(BIN)/python -m pip install --quiet -e ".[test]"
	rm -rf $(AZURE_AGENTS_1_2)
	$(BIN)/python -m pip install --quiet --no-deps --target $(AZURE_AGENTS_1_2) \
		"azure-ai-agents==$(AZURE_AGENTS_1_2_VERSION)"
	rm -rf $(PROJECTS_SAMPLES) $(PROJECTS_SAMPLES).download
	$(BIN)/python -m pip download --quiet --no-deps --no-binary :all: \
		--dest $(PROJECTS_SAMPLES).download "azure-ai-projects==$(AZURE_AI_PROJECTS_VERSION)"
	mkdir -p $(PROJECTS_SAMPLES)
	tar -xzf $(PROJECTS_SAMPLES).download/*.tar.gz -C $(PROJECTS_SAMPLES) --strip-components=1 \
		--wildcards '*/samples/*'
	rm -rf $(PROJECTS_SAMPLES).download
	touch $(STAMP)

run: setup
	$(BIN)/threadline serve --host $(HOST) --port $(PORT)

lint: setup
	$(BIN)/ruff check threadline tests bench
	$(BIN)/ruff format --check threadline tests bench
	$(BIN)/mypy threadline bench

# The tests use the machine's PostgreSQL (127.0.0.1:5432, trust auth); start it if it is down.
postgres:
	@pg_isready -q -h 127.0.0.1 -p 5432 || pg_ctlcluster --skip-systemctl-redirect $$(ls /etc/postgresql | head -1) main start
	@pg_isready -q -h 127.0.0.1 -p 5432 -t 30

# Two processes, a module's tests in one (they share the servers the module starts).
test: lint postgres
	$(BIN)/python -m pytest -q -n 2 --dist loadscope

bench: setup
	$(BIN)/python -m bench.run
