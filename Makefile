# roadsight: `make demo` runs the main job, `make test` runs the tests.
# A GPU user overrides the torch wheel:  make test TORCH_SPEC='torch==2.13.0 --index-url ...'
PYTHON ?= python3
TORCH_SPEC ?= torch==2.13.0
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# Re-installs only when the project's dependency list changed.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet "$(TORCH_SPEC)"
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/roadsight record env=urban_crossing camera=bev episodes=2 seed=0 hydra.run.dir=outputs/demo/record

test: $(STAMP)
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check .

bench: $(STAMP)
	$(BIN)/roadsight bench

clean:
	rm -rf outputs multirun .pytest_cache
