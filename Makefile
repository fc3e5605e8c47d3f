# The two commands a newcomer needs:
#   make run    set up and start jobgate on its embedded default (SQLite + the local destination)
#   make test   set up everything the tests need (PostgreSQL, Slurm + PBS wrappers, sshd, S3) and run them all
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)

.PHONY: run test lint services services-down bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	rm -f $(VENV)/.installed-* && touch $@

run: $(STAMP)
	@echo "jobgate: starting the gateway (SQLite store in $${JOBGATE_HOME:-~/.local/share/jobgate}, destination 'local')."
	@echo "jobgate: in another terminal, submit a job:  $(BIN)/jobgate run examples/hello.sh"
	@echo "jobgate: list jobs:  $(BIN)/jobgate ls      stop the gateway: Ctrl-C (jobs keep running)"
	@echo "jobgate: the dashboard: open the link that  $(BIN)/jobgate ui --user $$(id -un)  prints"
	$(BIN)/jobgate serve

# Services need root (packages, daemons). Without root they are not started and the tests
# that need them skip with the reason; CI sets JOBGATE_REQUIRE_SERVICES=1 to fail instead.
services: $(STAMP)  # the S3 server (moto) comes from the dev dependencies
	@if [ "$$(id -u)" = 0 ]; then scripts/services-up.sh; \
	else echo "make: not root: PostgreSQL/Slurm/sshd/S3 not started; their tests will skip"; fi

services-down:
	scripts/services-down.sh

lint: $(STAMP)
	$(BIN)/ruff check src tests bench examples
	$(BIN)/mypy
	$(BIN)/lint-imports

test: $(STAMP) services lint
	$(BIN)/pytest

bench: $(STAMP) services
	$(BIN)/python bench/local_throughput.py

clean:
	rm -rf $(VENV) build dist .mypy_cache .ruff_cache .pytest_cache
