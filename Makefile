# Two entry points for a fresh machine: `make demo` and `make test`.
# Both create .venv if missing and install pinned, tested versions (constraints.txt).
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
# The CPU wheel of torch lies on disk on our machines; pip finds it through --find-links.
WHEELS := $(wildcard /opt/wheels)
PIP_FLAGS := -c constraints.txt $(if $(WHEELS),--find-links $(WHEELS),)
DEMO_DIR ?= demo

.PHONY: venv demo test lint format bench clean

$(BIN)/thyrovid: pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade "pip>=24"
	$(BIN)/python -m pip install -q $(PIP_FLAGS) -e ".[dev]"
	touch $(BIN)/thyrovid

venv: $(BIN)/thyrovid

demo: venv
	$(BIN)/thyrovid demo --out $(DEMO_DIR)

test: venv
	$(BIN)/python -m pytest -q -n 2 --dist loadfile

lint: venv
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

format: venv
	$(BIN)/ruff format . && $(BIN)/ruff check --fix .

bench: venv
	$(BIN)/python -m pip install -q $(PIP_FLAGS) --no-deps monai
	for f in benchmarks/[!_]*.py; do $(BIN)/python $$f; done

clean:
	rm -rf $(VENV) $(DEMO_DIR) .pytest_cache
