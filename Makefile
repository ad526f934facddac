# voicetwin set-up and checks. `make quickstart` and `make test` work on a fresh Debian machine as root.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP := $(VENV)/.voicetwin-installed
DEBIAN_PACKAGES := espeak-ng festival festvox-ru festvox-kallpc16k festvox-us-slt-hts flite sox \
	rubberband-cli alsa-utils codec2-examples opencv-doc
export HF_HUB_OFFLINE := 1
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: install debian quickstart test bench clean help

help:
	@echo "make quickstart  install everything and run the main job on built-in examples (writes out/quickstart/)"
	@echo "make test        install everything and run the test suite"
	@echo "make bench       run the benchmarks in bench/ (slow; prints figures)"

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
	@touch $(STAMP)

install: debian $(STAMP)

quickstart: install
	$(PY) recipes/quickstart.py --out out/quickstart

test: install
	$(PY) -m pytest -q tests

bench: install
	$(PY) bench/ingest.py

clean:
	rm -rf out .pytest_cache
