# edge-gateway: `make dev` serves the worker locally, `make test` runs every test. Both set up a
# fresh machine first (wasm target, pinned build tools, npm packages), idempotently.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
export PATH := $(CURDIR)/node_modules/.bin:$(HOME)/.cargo/bin:$(PATH)
PORT ?= 8787
# Where `make listen` receives the demo tenant's deliveries (and stands in for channel APIs).
LISTEN_PORT ?= 9999

WORKER_BUILD_VERSION := 0.8.7
WASM_BINDGEN_VERSION := 0.2.130
# worker-build would download wasm-bindgen, wasm-opt and esbuild; point it at local ones instead.
BUILD_ENV := WASM_BINDGEN_BIN=wasm-bindgen WASM_OPT_BIN=$(CURDIR)/node_modules/.bin/wasm-opt ESBUILD_BIN=$(CURDIR)/node_modules/.bin/esbuild
SOURCES := $(shell find src routes widget console -type f) Cargo.toml Cargo.lock build.rs

.PHONY: setup tools npm browser mcp-venv build cli dev listen test test-core sigv4-suite test-e2e seed catalog event-types bench bench-ab bench-cold profile soak fuzz lint clean

setup: tools npm

# The pinned build tools compile unoptimized (`--debug`): they run for seconds on our wasm and give
# the same build byte for byte, and the release profile took most of a cold `make test` (327 s for
# both at opt-level 1, 143 s unoptimized). --bin and --no-default-features skip code we never run
# (worker-codegen; wasm-bindgen's test-runner downloads over TLS).
tools:
	@rustup target list --installed | grep -qx wasm32-unknown-unknown || rustup target add wasm32-unknown-unknown
	@worker-build --version 2>/dev/null | grep -q '$(WORKER_BUILD_VERSION)' || cargo install --debug worker-build --version =$(WORKER_BUILD_VERSION) --locked --bin worker-build
	@wasm-bindgen --version 2>/dev/null | grep -q '$(WASM_BINDGEN_VERSION)' || cargo install --debug wasm-bindgen-cli --version =$(WASM_BINDGEN_VERSION) --no-default-features --bin wasm-bindgen

npm: node_modules/.install-stamp
node_modules/.install-stamp: package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $@

# The widget's browser test drives Debian's Chromium with playwright-core (no browser download).
browser:
	@test -x /usr/bin/chromium || { apt-get update -qq && apt-get install -y -qq chromium; }

# The MCP e2e drives /v1/mcp with the official Python SDK too (tests/e2e/mcp_client.py), from a
# venv of its own under target/, made once; a changed pin makes it again.
MCP_PY_VERSION := 2.3.0
MCP_VENV := target/mcp-venv
mcp-venv: $(MCP_VENV)/.mcp-$(MCP_PY_VERSION)
$(MCP_VENV)/.mcp-$(MCP_PY_VERSION):
	rm -rf $(MCP_VENV) && python3 -m venv $(MCP_VENV)
	$(MCP_VENV)/bin/pip install --quiet --disable-pip-version-check mcp==$(MCP_PY_VERSION)
	@touch $@

build: build/index.js
# worker-build keeps the wasm names section (for stack traces); it is a fifth of the binary, so
# the shipped build drops it (panic messages keep their file and line). `make profile` runs the
# copy that keeps them, in target/profile/.
WASM_FEATURES := $(addprefix --enable-,mutable-globals sign-ext nontrapping-float-to-int bulk-memory multivalue reference-types exception-handling)
build/index.js: $(SOURCES) | tools npm
	$(BUILD_ENV) worker-build --release
	rm -rf target/profile && cp -r build target/profile
	wasm-opt build/index_bg.wasm -o build/index_bg.wasm --strip-debug --strip-producers $(WASM_FEATURES)
	@touch $@

.dev.vars:
	cp .dev.vars.example .dev.vars

# Validates and seals kv-seed/ with core's own code, then loads it into wrangler's local KV.
seed: .dev.vars | tools npm
	PORT=$(PORT) LISTEN_PORT=$(LISTEN_PORT) cargo run --quiet --bin seed -- --dev-vars .dev.vars --out .wrangler/seed.json kv-seed
	wrangler kv bulk put --binding CONFIG --local .wrangler/seed.json

# kv-seed/catalog.json from LiteLLM's model data set (MIT), as its PyPI wheel ships it at
# LITELLM_VERSION: `make catalog LITELLM_VERSION=x.y.z` refreshes it, then review the diff.
# Not part of `make test`.
LITELLM_VERSION ?= 1.110.2
catalog:
	python3 -m pip download --quiet --no-deps --only-binary :all: -d target/catalog litellm==$(LITELLM_VERSION)
	unzip -p "$$(ls target/catalog/litellm-$(LITELLM_VERSION)-*.whl | head -1)" \
	  litellm/model_prices_and_context_window_backup.json > target/catalog/litellm-$(LITELLM_VERSION).json
	cargo run --quiet --bin catalog -- --source target/catalog/litellm-$(LITELLM_VERSION).json \
	  --version $(LITELLM_VERSION) --out kv-seed/catalog.json
	git diff --stat kv-seed/catalog.json

# Receives the demo tenant's deliveries on LISTEN_PORT and verifies each with its secret (from the
# environment, never argv); answers channel sends as Telegram, Slack, WhatsApp and Twilio would.
# The first run compiles gatewayctl (not --quiet: that takes a while, and shows why).
listen: | npm
	cargo build --bin gatewayctl
	export GATEWAY_DESTINATION_SECRET="$$(node -p 'require("./kv-seed/tenants/demo.json").tenant?.destination?.secret ?? ""')"; \
	  : "$${GATEWAY_DESTINATION_SECRET:?kv-seed/tenants/demo.json has no tenant.destination.secret to verify deliveries with}"; \
	  exec target/debug/gatewayctl listen --port $(LISTEN_PORT)

dev: build seed
	wrangler dev --port $(PORT) --var GATEWAY_ENV:development

# The native tests compile while the tools install and npm downloads (make -j3); the e2e suite then
# runs on the one built worker, four files at a time (they mostly wait on timers and I/O; six
# saturate two cores). Each target's output is shown whole when it ends (-O).
test:
	$(MAKE) --no-print-directory -j3 -O test-core test-e2e

# src/core/webhook/event_types.json (GET /v1/event-types) made again from the code, then checked.
event-types:
	UPDATE_EVENT_TYPES=1 cargo test --quiet --lib event_types_json_is_current
	cargo test --quiet --lib webhook::event_types
	git diff --stat src/core/webhook/event_types.json

test-core: sigv4-suite
	SIGV4_SUITE=$(CURDIR)/target/sigv4-suite cargo test --quiet

# AWS's SigV4 test suite (aws-c-auth's, Apache-2.0) as the aws-sigv4 crate ships it, fetched by
# cargo into target/ once (never committed); the native SigV4 test runs every case in it.
AWS_SIGV4_VERSION := 1.6.6
sigv4-suite: target/sigv4-suite
target/sigv4-suite:
	mkdir -p target/sigv4-fetch/src && touch target/sigv4-fetch/src/lib.rs
	printf '[package]\nname = "sigv4-fetch"\nversion = "0.0.0"\n[workspace]\n[dependencies]\naws-sigv4 = { version = "=$(AWS_SIGV4_VERSION)", default-features = false }\n' > target/sigv4-fetch/Cargo.toml
	cargo fetch --quiet --manifest-path target/sigv4-fetch/Cargo.toml
	rm -rf $@.tmp && mkdir -p $@.tmp
	cp -r "$${CARGO_HOME:-$$HOME/.cargo}"/registry/src/*/aws-sigv4-$(AWS_SIGV4_VERSION)/aws-signing-test-suite/v4/. $@.tmp/
	mv $@.tmp $@

test-e2e: build browser mcp-venv | npm
	cargo build --quiet --bin gatewayctl
	node --test --test-concurrency=4 --test-timeout=120000 'tests/e2e/*.test.mjs'

# A CPU profile of one route family under load (ROUTE=llm, webhook, channel or integration):
# the top functions by self time, split into wasm, JS glue and runtime.
ROUTE ?= llm
profile: build | npm
	@command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }
	ROUTE=$(ROUTE) node --experimental-websocket bench/profile.mjs

# Ten minutes of mixed traffic at 80% of capacity with upstream faults (SOAK_MINUTES etc.: see
# bench/soak.mjs); fails on a lost event, unexplained failures or memory growth. Not in `make test`.
soak: build | npm
	node --experimental-websocket bench/soak.mjs

# Each route beside its JavaScript reference (bench/run.mjs), every row measured on a quiet
# gateway (bench/quiet.mjs; fails if one never gets quiet within BENCH_QUIET_SECONDS, default
# 180). BENCH_ONLY=llm: the LLM rows alone; BENCH_SECONDS and BENCH_CONNECTIONS set wrk's load.
bench: build | npm
	@command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }
	node bench/run.mjs

# Two builds side by side on the LLM routes, alternately against the JS proxy floor (bench/ab.mjs):
# `make bench-ab BEFORE=target/ab/old` keeps a copy of another build under the repo (Miniflare
# loads modules from inside it only) and compares it with build/. AB_ROUTES, AB_ROUNDS, AB_TTFC=1.
bench-ab: build | npm
	@command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }
	node bench/ab.mjs $(BEFORE) build

# A fresh isolate's first answers alone (bench/cold.mjs), COLD_RUNS (default 5) starts, medians;
# COLD_COMPILED=1 also lists the wasm its first LLM answer compiled, by crate.
bench-cold: build | npm
	node bench/cold.mjs

# libFuzzer (cargo fuzz, stable toolchain, no sanitizer: the core is safe Rust, so the findings
# that matter are panics, broken properties and inputs slower than 10 s) on each target for
# FUZZ_SECONDS. A crash is left in
# fuzz/artifacts/<target>/: fix it, then keep the input in fuzz/regressions/<target>/, which
# `cargo test` replays (core::fuzzing) along with the seeds.
FUZZ_SECONDS ?= 60
FUZZ_TARGETS := sse stream_from_openai stream_from_anthropic stream_from_gemini stream_from_responses convert signatures normalize mapping provider_answer eventstream mcp_message
CARGO_FUZZ_VERSION := 0.13.2
fuzz:
	@cargo fuzz --version 2>/dev/null | grep -q '$(CARGO_FUZZ_VERSION)' || cargo install cargo-fuzz --version =$(CARGO_FUZZ_VERSION) --locked
	cd fuzz && for t in $(FUZZ_TARGETS); do \
	  mkdir -p corpus/$$t regressions/$$t; \
	  cargo fuzz run --sanitizer none -O $$t corpus/$$t seeds/$$t regressions/$$t -- \
	    -max_total_time=$(FUZZ_SECONDS) -timeout=10 -max_len=65536 -rss_limit_mb=2048 -print_final_stats=1 \
	    || { echo "fuzz target $$t failed: see fuzz/artifacts/$$t/"; exit 1; }; \
	done

# gatewayctl, the command-line tool, in target/release/ (or: cargo install --path . --bin gatewayctl).
cli:
	cargo build --release --bin gatewayctl

lint:
	cargo fmt --all -- --check
	cargo clippy --all-targets -- -D warnings
	cargo clippy --target wasm32-unknown-unknown --lib -- -D warnings
	rustfmt --check --edition 2021 fuzz/fuzz_targets/*.rs

clean:
	rm -rf build target/wasm32-unknown-unknown .wrangler
