# podsearch: the two commands a user needs are `make setup && make run` (the demo) and
# `make test` (everything CI checks). See README.md.
GO          ?= go
BIN         := bin/podsearch
STATICCHECK := $(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2
BENCHSTAT   := $(GO) run golang.org/x/perf/cmd/benchstat@v0.0.0-20260908200009-22c9c6c9d4da
PORT        ?= 8080

.PHONY: build setup run test vet staticcheck fmt-check wasm wasm-check bench benchstat clean

build:
	$(GO) build -o $(BIN) ./cmd/podsearch

## setup: fetch the USE-lite weights and ONNX Runtime into $$PODSEARCH_HOME and export the model.
setup: build
	./$(BIN) setup
	./$(BIN) wasm-cache

## run: the local demo (index the bundled corpus and fine-tune the query model on first run,
## start encoder + edge); ADAPTER=FILE serves a model fine-tuned with `podsearch train`,
## BASE=1 the base model.
run: build
	./$(BIN) demo --addr 127.0.0.1:$(PORT) $(if $(ADAPTER),--adapter $(ADAPTER)) $(if $(BASE),--base)

## test: formatting, vet, staticcheck and the race-enabled test suite.
test: fmt-check vet staticcheck
	$(GO) test -race -timeout 45m ./...

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...

staticcheck:
	$(STATICCHECK) ./...

## wasm: rebuild the committed WebAssembly guests (needs clang-14, lld-14); wasm-check: verify the bytes.
wasm:
	wasm/build.sh

wasm-check:
	wasm/build.sh --check

## bench: every Go benchmark once (a smoke run); the comparisons are `podsearch bench ...`
## (docs/benchmarks.md) and benchstat: the scan kernels native vs wasm, 6 runs each, side by side.
bench: build
	$(GO) test -run '^$$' -bench . -benchtime 2x ./...

benchstat:
	@mkdir -p bin
	$(GO) test -run '^$$' -bench 'Scan8|FastScan4|IndexSearch' -count 6 -benchtime 300x ./wasm/scan > bin/bench-wasm-scan.txt
	$(BENCHSTAT) -col /engine bin/bench-wasm-scan.txt

clean:
	rm -rf bin
