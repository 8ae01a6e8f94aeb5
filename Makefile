# `make demo` and `make test` work on a fresh clone: each creates .venv when it is missing.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test cross-tools fuzz bench conformance lint clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/tvmopt demo

test: $(STAMP) cross-tools
	$(PY) -m pytest -q -m "not slow and not tuning and not cuda"

# aarch64's cross compiler and qemu-user, so the aarch64 tests run (installed where permitted)
cross-tools:
	sh tests/install_cross_tools.sh

# Differential fuzzing against ONNX Runtime on N random graphs; reduced failing graphs and their
# reasons go to build/fuzz/ (make test runs 50 of them)
N ?= 1000
fuzz: $(STAMP)
	$(PY) -m tests.fuzz.run --count $(N) --out build/fuzz

# The default bench suite, every target and peer available here; writes bench/results/.
BENCH_ARGS ?= --repeat 30 --warmup 2 --threads 2
bench: $(STAMP)
	$(VENV)/bin/tvmopt bench $(BENCH_ARGS)

# The whole onnx backend suite (node and model tests, 5-10 min on 2 cores), through tvmopt and
# through ONNX Runtime's backend (1-2 min); writes tests/conformance/results.md. Failing tests are
# the data, so they do not fail the target.
CONFORMANCE_XML := build/conformance/junit.xml
CONFORMANCE_PEER_XML := build/conformance/onnxruntime.xml
CONFORMANCE_RUN := TVMOPT_CONFORMANCE=full $(PY) -m pytest -q -p no:cacheprovider --tb=line \
	--show-capture=no -rN tests/test_conformance.py
conformance: $(STAMP)
	mkdir -p $(dir $(CONFORMANCE_XML))
	-$(CONFORMANCE_RUN) --junitxml=$(CONFORMANCE_XML)
	-TVMOPT_CONFORMANCE_BACKEND=onnxruntime $(CONFORMANCE_RUN) --junitxml=$(CONFORMANCE_PEER_XML)
	$(PY) tests/conformance/summarize.py $(CONFORMANCE_XML) tests/conformance/results.md \
		--peer $(CONFORMANCE_PEER_XML)

lint: $(STAMP)
	$(VENV)/bin/ruff check tvmopt tests bench
	$(VENV)/bin/clang-format --dry-run --Werror deploy/cpp/include/tvmopt/*.h deploy/cpp/apps/*.cc deploy/cpp/examples/*/*.cc

clean:
	rm -rf $(VENV) build *.egg-info
