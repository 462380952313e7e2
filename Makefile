# fleetscaler developer commands. Every target creates the virtualenv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: venv lint test test-fast bench demo clean docs docs-generate

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

venv: $(STAMP)

lint: venv
	$(BIN)/ruff check src tests scripts bench
	$(BIN)/mypy

test: lint cfn-lint docs
	$(BIN)/pytest -q

test-fast: venv
	$(BIN)/pytest -q -x tests/unit

bench: venv
	$(BIN)/python bench/router_bench.py

demo: venv
	$(BIN)/python -m fleetscaler.local.demo

# The manual (docs/, mkdocs.yml): a strict build, so a broken link or anchor fails. Open out/site/index.html.
docs: venv
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --site-dir out/site

# Rewrite the generated reference pages (docs/reference/*.md) from the code they describe.
docs-generate: venv
	$(BIN)/python -m fleetscaler.docs_gen --write

clean:
	rm -rf $(VENV) .venv-tools build dist out .pytest_cache .mypy_cache .ruff_cache .hypothesis

# Template checks in their own virtualenv (checkov and cfn-lint pin versions the project cannot share).
TOOLS_VENV := .venv-tools
TOOLS_STAMP := $(TOOLS_VENV)/.installed-stamp
TEMPLATES := cfn/fleet-autoscaler.yaml cfn/async-endpoints.yaml

$(TOOLS_STAMP): requirements-tools.txt
	@test -x $(TOOLS_VENV)/bin/python || $(PYTHON) -m venv $(TOOLS_VENV)
	$(TOOLS_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(TOOLS_VENV)/bin/python -m pip install --quiet -r requirements-tools.txt
	@touch $(TOOLS_STAMP)

.PHONY: cfn-lint
cfn-lint: $(TOOLS_STAMP)
	$(TOOLS_VENV)/bin/cfn-lint $(TEMPLATES)
	$(TOOLS_VENV)/bin/checkov --quiet --compact --skip-download --framework cloudformation $(addprefix -f ,$(TEMPLATES))

.PHONY: package
package: venv
	$(BIN)/python -m fleetscaler.deploy.package --output dist/code.zip

# make deploy STACK=my-fleet BUCKET=my-bucket PARAMS="ResourceName=endpoint EndpointSuffixes=1,2,3"
.PHONY: deploy
deploy: package
	@test -n "$(STACK)" -a -n "$(BUCKET)" || { echo "error: usage: make deploy STACK=name BUCKET=bucket [PARAMS='K=V ...']" >&2; exit 2; }
	$(BIN)/fleetscaler --stack $(STACK) deploy --bucket $(BUCKET) --code dist/code.zip $(addprefix --params ,$(PARAMS))

.PHONY: bench-scaling
bench-scaling: venv
	$(BIN)/python bench/scaling_bench.py

.PHONY: bench-submit
bench-submit: venv
	$(BIN)/python bench/submit_bench.py
