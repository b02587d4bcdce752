# sidetrace: `make run` starts the example service behind sidetrace; `make test` runs every test.
GO        ?= go
BIN       := bin
FUZZTIME  ?= 30000x
HELLO_ADDR ?= 127.0.0.1:8080

.PHONY: all build run test test-go test-sdk fuzz bench plugins check lint tools clean

all: build

build:
	$(GO) build -o $(BIN)/sidetrace ./cmd/sidetrace

$(BIN)/hello: $(wildcard examples/hello/*.go)
	$(GO) build -o $@ ./examples/hello

## run: the example service on $(HELLO_ADDR) with sidetrace in front of it (inbound :15006, egress :15001,
## admin :15000, traces in the embedded store).
run: build $(BIN)/hello
	@echo "sidetrace: inbound http://127.0.0.1:15006 -> example service http://$(HELLO_ADDR); admin http://127.0.0.1:15000"
	@echo "try:  curl -i http://127.0.0.1:15006/"
	@echo "      curl -i http://127.0.0.1:15006/fail"
	@echo "      curl -N http://127.0.0.1:15006/events"
	@echo "      curl -i 'http://127.0.0.1:15006/call?url=http://127.0.0.1:15006/slow?ms=120'   (egress hop: one trace, three spans)"
	@echo "then: curl http://127.0.0.1:15000/debug/traces   and   curl http://127.0.0.1:15000/debug/traces/<traceId>"
	@HTTP_PROXY=http://127.0.0.1:15001 $(BIN)/hello -addr $(HELLO_ADDR) & hello=$$!; trap 'kill $$hello 2>/dev/null' EXIT INT TERM; \
	OTEL_SERVICE_NAME=$${OTEL_SERVICE_NAME:-hello} \
	SIDETRACE_UPSTREAM=http://$(HELLO_ADDR) SIDETRACE_INBOUND_ADDR=$${SIDETRACE_INBOUND_ADDR:-127.0.0.1:15006} \
	$(BIN)/sidetrace

## tools: what the tests need beyond Go: wat2wasm (wabt) for the WAT plugins, Debian's rustc with the wasm32
## standard library and clang/lld/wasi-libc for the Rust and C SDKs, nginx-light for the benchmark driver's
## paired-run test, the AssemblyScript compiler from npm.
## Installed with apt-get and npm when running as root, otherwise named in one line.
TOOL_PKGS := wabt rustc libstd-rust-dev-wasm32 clang lld wasi-libc libclang-rt-14-dev-wasm32 nginx-light
tools:
	@missing=$$(for p in $(TOOL_PKGS); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing" $$missing; apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else echo "missing Debian packages: apt-get install" $$missing; exit 1; fi; \
	fi
	@[ -d wasm-sdk/assemblyscript/node_modules/assemblyscript ] || (cd wasm-sdk/assemblyscript && npm ci --no-audit --no-fund --loglevel=error)

## test: every test, with the race detector, plus a short fuzzing pass over every parser.
test: tools test-go test-sdk fuzz

test-go:
	$(GO) test -race -count=1 ./...

test-sdk:
	cd wasm-sdk/go && $(GO) test -count=1 ./...

## fuzz: each fuzz target for FUZZTIME (default 30000x: 30,000 inputs, 1.5-5 s each here), from its seed corpus;
## a failure prints the fuzzer's output. A count rather than a duration: Go 1.26's coordinator can report a bare
## "context deadline exceeded" when a duration -fuzztime expires under CPU contention (golang/go#75804, fixed in
## Go 1.27), which failed CI once with no failing input; a count has no deadline to race.
fuzz:
	@for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
	    echo "fuzz $$pkg $$f"; \
	    out=$$($(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg 2>&1) || { echo "$$out"; exit 1; }; \
	  done; \
	done

## bench: end-to-end figures as one table (direct, nginx, sidetrace with sampling off and on, with the example
## plugins, over h2c; the plugins side by side with nginx at 1000 requests/s), then the hot-path micro-benchmarks. BENCH_QUICK=1 for a smoke run; BENCH_FLAGS for more
## sidetrace-bench flags (e.g. -nice -10 on a shared machine).
BENCH_SCENARIOS ?= direct,nginx,sidetrace-off,sidetrace,sidetrace-plugins,sidetrace-plugins-go,direct-h2c,sidetrace-h2c
BENCH_PAIRED_D ?= $(if $(filter 1,$(BENCH_QUICK)),2s,12s)
bench: build plugins
	@command -v nginx >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
	  { echo "installing nginx-light for the comparison row"; apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx-light >/dev/null; }; } || \
	  echo "nginx is missing (apt-get install nginx-light): its row is skipped"
	$(GO) build -o $(BIN)/sidetrace-bench ./cmd/sidetrace-bench
	$(BIN)/sidetrace-bench run -sidetrace $(BIN)/sidetrace -scenarios $(BENCH_SCENARIOS) -budget 7m -paired sidetrace-plugins -paired-d $(BENCH_PAIRED_D) \
	  -plugins-env SIDETRACE_PLUGINS_FILE=bench/plugins.json -plugins-go-env SIDETRACE_PLUGINS_FILE=bench/plugins-go.json $(BENCH_FLAGS)
	$(GO) test -run '^$$' -bench . -benchmem -benchtime 500ms ./proxy/... ./propagators/ ./internal/sampling/ ./internal/telemetry/ ./plugins/

## plugins: build every example WASM plugin, in every language, into bin/plugins.
plugins: tools
	./plugins/build-examples.sh $(BIN)/plugins
	./wasm-sdk/build-languages.sh $(BIN)/plugins

## check: formatting, vet, and a tidy go.mod; fails on a dirty diff.
check lint:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); exit 1; }
	$(GO) vet ./...
	$(GO) mod tidy && git diff --exit-code go.mod go.sum

clean:
	rm -rf $(BIN)
