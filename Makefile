# blesmp: `make demo` and `make test` set themselves up (a venv in .venv with
# the pinned requirements) on a machine with only Python 3.11, make and git.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
MP := $(VENV)/bin/micropython
STAMP := $(VENV)/.installed-$(shell cksum < requirements.txt | cut -d' ' -f1)
MP_PATH := lib:.frozen
MP_UNITS := $(sort $(wildcard host_tests/unit/test_*.py))

.PHONY: setup test test-py test-mp compile typecheck lint bench fuzz clean demo demo-summary deploy flash bonds repl firmware nimble

setup: $(STAMP)

$(STAMP): requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -r requirements.txt
	rm -f $(VENV)/.installed-*
	touch $@

# Every gate (docs/testing.md); stops at the first failure.
test: $(STAMP) lint typecheck compile test-mp test-py demo-summary

# Each gate prints one line when it passes (a green run is quiet), everything when it fails.
test-py: $(STAMP)
	@$(PY) -m pytest host_tests

test-mp: $(STAMP)
	@MICROPYPATH=$(MP_PATH) $(MP) tools/mptest.py $(MP_UNITS)
	@MICROPYPATH=$(MP_PATH) $(MP) tools/mptest.py --pure $(MP_UNITS)

compile: $(STAMP)
	@$(PY) tools/compile_lib.py xtensawin rv32imc

typecheck: $(STAMP)
	@$(PY) tools/typecheck.py

lint: $(STAMP)
	@$(VENV)/bin/ruff check -q . && echo "ruff: no findings"

# Figures, not tests: the MicroPython run is the one that counts (its last
# line is JSON); CPython's is printed for comparison. The heap table runs the
# MicroPython app from .py, .mpy (what a board gets), .mpy without line numbers
# and a ROMFS image.
bench: $(STAMP)
	MICROPYPATH=lib:tools:.frozen $(MP) tools/bench.py --json
	$(PY) tools/bench.py
	$(PY) tools/bench_smp.py --json
	$(PY) tools/bench_parts/heap.py
	$(PY) tools/bench_parts/realhost.py --json

# The real-host interpreters: MicroPython's unix port with esp-nimble (ESP32's host and
# configuration) and with mynewt-nimble (MicroPython's unix configuration); cached by source
# hash outside the clone (docs/real-host.md). NIMBLE_HOST=esp|mynewt builds one; MPY_SRC /
# ESP_NIMBLE_SRC name checkouts instead of the third-party tarballs beside the clone.
nimble: $(STAMP)
	$(PY) -m tools.realhost.build $(or $(NIMBLE_HOST),all)

# The long hardening run (SECURITY.md): >= 100,000 SMP engine fuzz cases, the attack tests,
# faults at every SMP step / flash operation on simulated boards, fuzz through the air.
# FUZZ_ARGS e.g. "--cases 200000 --seed 1"; figures also go to build/fuzz-figures.json.
fuzz: $(STAMP)
	$(PY) tools/fuzz.py $(FUZZ_ARGS)

# -- the product: the demo on simulated boards, and the tools for a real board --------
# BOARD = a folder of boards/ (esp32, esp32s3, esp32c3); PORT = its serial port;
# DRY_RUN=1: deploy prints what it would copy, no board needed.
BOARD ?= esp32
APP ?= main
# STACK: where the demo's boards run: sim (simulated boards on CPython), sim-mp (the ESP32
# boards on the real MicroPython interpreter), nimble (the real NimBLE host: esp-nimble on
# MicroPython's unix port, virtual controllers), nimble-mynewt. tools/demo.py lists them.
STACK ?= sim
demo: $(STAMP)
	@case "$(MP)" in 1|yes|true) echo "make demo: MP names the MicroPython binary; for the boards on MicroPython use: make demo STACK=sim-mp"; exit 2;; esac
	$(PY) tools/demo.py --stack "$(STACK)"

# make test's last gate: the demo, printing only its summary (the whole log if a step fails)
demo-summary: $(STAMP)
	@$(PY) tools/demo.py --stack "$(STACK)" --summary-only

deploy: $(STAMP)
	$(PY) tools/deploy.py --port "$(PORT)" --board $(BOARD) --app $(APP) $(if $(SOURCE),--source) $(if $(FROZEN),--frozen) $(if $(DRY_RUN),--dry-run)

flash: $(STAMP)
	$(PY) tools/flash.py --port "$(PORT)" --board $(BOARD) --firmware "$(FIRMWARE)"

bonds: $(STAMP)
	$(PY) tools/bonds.py --port "$(PORT)" $(if $(REMOVE),--remove $(REMOVE))

repl: $(STAMP)
	$(PY) tools/repl.py --port "$(or $(PORT),auto)" --app $(APP)

# A MicroPython image with blesmp and the apps frozen in (not run by `make test`): needs a
# MicroPython source tree (MPY_DIR) and ESP-IDF's environment (. $$IDF_PATH/export.sh).
firmware: $(STAMP)
	@test -d "$(MPY_DIR)/ports/esp32" || { echo "make firmware BOARD=$(BOARD) MPY_DIR=<micropython checkout>" \
		"(with ESP-IDF's export.sh sourced)"; exit 2; }
	$(MAKE) -C "$(MPY_DIR)/ports/esp32" \
		BOARD=$$($(PY) -c 'import json; print(json.load(open("boards/$(BOARD)/board.json"))["micropython_board"])') \
		FROZEN_MANIFEST="$(CURDIR)/firmware/manifest.py"

clean:
	rm -rf build .pytest_cache .ruff_cache
