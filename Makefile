# Stablelane — the project's verbs. `make help` lists them.
#
#   make devnet   run the local devnet (anvil + contracts + node + a demo payment)
#   make test     everything CI checks: formatting, clippy, generated-file freshness,
#                 forge tests and all Rust tests
#
# Tools come from the registries only: `npm ci` (pinned by package-lock.json) installs
# anvil/forge/cast, the solc compiler and OpenZeppelin; cargo fetches the crates.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

NPM_STAMP := node_modules/.stablelane-npm-ci
FORGE := $(CURDIR)/node_modules/.bin/forge
CHECK_DIR := target/freshness
CARGO_TEST := $(shell cargo nextest --version >/dev/null 2>&1 && echo "cargo nextest run --no-fail-fast" || echo "cargo test --no-fail-fast")
DEVNET_ARGS ?=

.PHONY: help tools contracts vectors devnet test fmt fmt-check clippy check-artifacts \
        check-vectors test-forge test-rust gas clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-16s %s\n", $$1, $$2}'

$(NPM_STAMP): package.json package-lock.json
	npm ci --ignore-scripts --no-audit --no-fund
	touch $@

tools: $(NPM_STAMP) ## install the pinned npm toolchain (anvil, forge, cast, solc, OpenZeppelin)

contracts: tools ## compile the contracts and refresh the committed artifacts
	cd contracts && $(FORGE) build
	node tools/export-artifacts.js contracts/out contracts/artifacts

vectors: tools ## regenerate the circomlibjs Poseidon test vectors
	node circuits/vectors/generate.js circuits/vectors/circomlib.json

devnet: tools ## anvil + contracts + node + a demo payment, writes anvil/devnet.json; Ctrl-C stops it
	cargo build --locked -p stablelane-cli -p stablelane-devnet
	target/debug/stablelane-devnet --node target/debug/stablelane $(DEVNET_ARGS)

test: fmt-check clippy check-artifacts check-vectors test-forge test-rust ## run every check CI runs
	@echo "make test: all checks passed"

fmt: tools ## format Rust and Solidity sources
	cargo fmt --all
	cd contracts && $(FORGE) fmt

fmt-check: tools
	cargo fmt --all -- --check
	cd contracts && $(FORGE) fmt --check

clippy:
	cargo clippy --locked --workspace --all-targets -- -D warnings

check-artifacts: tools ## fail if rebuilding the contracts would change a committed artifact or a contract exceeds EIP-170
	rm -rf $(CHECK_DIR)/forge && mkdir -p $(CHECK_DIR)/forge
	cd contracts && $(FORGE) build --force --out ../$(CHECK_DIR)/forge/out --cache-path ../$(CHECK_DIR)/forge/cache >/dev/null
	cd contracts && $(FORGE) build --sizes src --out ../$(CHECK_DIR)/forge/sizes-out --cache-path ../$(CHECK_DIR)/forge/sizes-cache >/dev/null || { \
	  echo "a deployable contract exceeds the EIP-170 runtime size limit (24,576 bytes): forge build --sizes"; exit 1; }
	node tools/export-artifacts.js $(CHECK_DIR)/forge/out $(CHECK_DIR)/forge/artifacts
	@diff -r contracts/artifacts $(CHECK_DIR)/forge/artifacts >/dev/null || { \
	  echo "contracts/artifacts is stale: run 'make contracts' and commit the result"; \
	  diff -r contracts/artifacts $(CHECK_DIR)/forge/artifacts | head -20; exit 1; }
	@echo "contract artifacts are fresh"

check-vectors: tools ## fail if regenerating the circomlibjs vectors would change them
	mkdir -p $(CHECK_DIR)
	node circuits/vectors/generate.js $(CHECK_DIR)/circomlib.json
	@diff -u circuits/vectors/circomlib.json $(CHECK_DIR)/circomlib.json >/dev/null || { \
	  echo "circuits/vectors/circomlib.json is stale: run 'make vectors' and commit the result"; exit 1; }
	@echo "circomlibjs vectors are fresh"

test-forge: tools ## forge unit, fuzz and invariant tests
	cd contracts && $(FORGE) test

gas: tools ## forge gas report (figures recorded in docs/benchmarks.md)
	cd contracts && $(FORGE) test --gas-report

test-rust: tools ## all Rust tests (unit, property, end-to-end on anvil)
	$(CARGO_TEST) --locked --workspace
	cargo test --locked --workspace --doc

clean: ## remove build outputs (keeps node_modules)
	cargo clean
	rm -rf contracts/out contracts/cache
