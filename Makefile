# Chronoscope: the README's two set-up commands are `make demo` and `make test`.
# Each creates .venv when missing and installs everything it needs, so each works alone.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.chronoscope-installed
SAMPLE := samples/hug-lego-movie.mp4
DEMO_OUT := out/demo

.PHONY: install demo test bench lint clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[gui,dev,adapters]'
	@touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	@mkdir -p $(DEMO_OUT)
	$(BIN)/chronoscope probe $(SAMPLE)
	$(BIN)/chronoscope probe $(SAMPLE) --json --output $(DEMO_OUT)/probe.json
	@echo "demo result: $(abspath $(DEMO_OUT))/probe.json"

test: $(STAMP)
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m pytest -q

bench: $(STAMP)
	@mkdir -p bench/results
	$(BIN)/python bench/decode_throughput.py --output bench/results/decode_throughput.json

lint: $(STAMP)
	$(BIN)/ruff check engine tests bench

clean:
	rm -rf $(VENV) out .pytest_cache
