# Two commands do all the set-up on a fresh Debian 12 / Python 3.11 machine (no ROS install):
#   make demo   - set up, then run the main job on the bundled defaults
#   make test   - set up, then ruff + the whole test suite
# Set-up (tools/bootstrap.sh) is idempotent: a second run takes well under a second.

VENV   ?= .venv
PY     := $(VENV)/bin/python
PYTEST_ARGS ?=

.PHONY: setup test lint format demo colcon clean help
help:
	@echo "make demo   - run the pipeline on the bundled footage and defaults (writes outputs/)"
	@echo "make test   - ruff + pytest (everything that can run on this machine)"
	@echo "make colcon - build the package with colcon as a ROS 2 workspace would (build/colcon-ws)"
	@echo "make clean  - remove build products (keeps .venv)"

setup:
	@VENV=$(VENV) tools/bootstrap.sh

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: setup
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

# tools/run_tests.sh sets the ROS environment tests need (localhost-only discovery, a unique
# domain id, the shared-memory profile) and fails a run that executed no test.
test: lint
	@VENV=$(VENV) tools/run_tests.sh $(PYTEST_ARGS)

demo: setup
	@VENV=$(VENV) tools/demo.sh

colcon: setup
	@VENV=$(VENV) tools/colcon_build.sh

clean:
	rm -rf build install log outputs .stamps/msgs
