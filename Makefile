# Every command a newcomer needs. `make demo` and `make test` set themselves up on a fresh clone.
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SAM := .tools/sam/bin/sam
SAM_VERSION := 1.170.0
CHECKOV := .tools/checkov/bin/checkov
CHECKOV_VERSION := 3.3.30
PYTHON ?= python3
export SAM_CLI_TELEMETRY := 0

.DEFAULT_GOAL := help
.PHONY: help install compile tools demo test lint lint-python lint-templates iam-check check build validate deploy invoke bench bench-storm test-integration clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-18s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $@

# SAM CLI pins its own boto3 and cfn-lint, so it lives in a venv of its own.
$(SAM):
	$(PYTHON) -m venv .tools/sam
	.tools/sam/bin/pip install --quiet --upgrade pip
	.tools/sam/bin/pip install --quiet "aws-sam-cli==$(SAM_VERSION)"

# checkov pins its own boto3 (1.35), older than ours, so it too lives in a venv of its own.
$(CHECKOV):
	$(PYTHON) -m venv .tools/checkov
	.tools/checkov/bin/pip install --quiet --upgrade pip
	.tools/checkov/bin/pip install --quiet "checkov==$(CHECKOV_VERSION)"

install: $(STAMP) ## Create the venv with the pinned dev dependencies
	@if [ -d .git ] && $(BIN)/python -c "import pre_commit" 2>/dev/null; then $(BIN)/pre-commit install; fi

# pip compiles an installed package's modules; an editable install leaves ours to be compiled again by every process
# that imports them (and never written back where PYTHONDONTWRITEBYTECODE is set): a fifth of a one-event run.
compile: $(STAMP) ## Byte-compile the engine, the layer and the functions (only what changed since)
	@$(BIN)/python -m compileall -q firebreak_local layers functions

demo: $(STAMP) compile ## Run the bundled scenarios on the embedded local AWS
	$(BIN)/firebreak demo

test: $(STAMP) $(SAM) compile ## Run the tests, then validate and build the stack offline
	$(BIN)/pytest -n auto --dist worksteal --durations=10
	$(SAM) validate --lint
	$(SAM) build --parallel

lint: $(STAMP) $(CHECKOV) ## ruff, mypy, cfn-lint, checkov, statelint and the IAM check
	@# Three independent single-threaded groups, two at a time: CI's two cores finish them in about half the time.
	$(MAKE) --no-print-directory --output-sync=target -j2 lint-python lint-templates iam-check

lint-python: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

lint-templates: $(STAMP) $(CHECKOV)
	$(BIN)/cfn-lint template.yaml member.yaml
	$(CHECKOV) --file template.yaml --framework cloudformation --compact --quiet --skip-download
	$(CHECKOV) --file member.yaml --framework cloudformation --compact --quiet --skip-download
	@# statelint 3.1.0 wants integers where JSONata allows {% %} timeouts; the test applies the documented filter.
	$(BIN)/pytest -q -p no:cacheprovider tests/definitions/test_state_machine_definitions.py -k statelint

tools: $(STAMP) $(SAM) $(CHECKOV) ## Every venv the targets use (CI builds them side by side: make -j3 tools)

iam-check: $(STAMP) ## IAM statements against IAM's own data; every call the playbooks make against their grants
	$(BIN)/python -m firebreak_local.iam_check
	$(BIN)/python -m firebreak_local.iam_coverage

check: lint test ## What CI runs

bench: $(STAMP) compile ## Median engine time, state transitions and API calls per playbook run
	$(BIN)/python -m firebreak_local.bench

bench-storm: $(STAMP) compile ## 200 findings from 50 attackers at once, default parameters: addresses blocked, lost updates, UpdateIPSet calls
	$(BIN)/python -m firebreak_local.storm

build: $(SAM) ## sam build
	$(SAM) build --parallel

validate: $(SAM) ## sam validate --lint
	$(SAM) validate --lint

deploy: $(SAM) ## sam deploy (add --guided the first time)
	$(SAM) build --parallel && $(SAM) deploy

invoke: $(SAM) ## sam local invoke FN=ParseFindingFunction EVENT=events/eventbridge/guardduty_ssh_brute_force.json (needs Docker)
	$(SAM) local invoke $(FN) --event $(EVENT)

test-integration: $(STAMP) ## Tests against a deployed stack (set AWS_SAM_STACK_NAME)
	$(BIN)/pytest -m integration

clean: ## Remove the venvs and build output
	rm -rf $(VENV) .tools .aws-sam .mypy_cache .ruff_cache
