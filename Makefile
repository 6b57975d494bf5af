GO ?= go

.PHONY: all test vet lint layering fmt bench fuzz ci

all: vet test

# The test command the README and CI use.
test:
	$(GO) test -race -count=1 ./...

vet:
	$(GO) vet ./...
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

# staticcheck, pinned, through the module proxy.
lint:
	$(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ./...

# The package layering (see .ci/layering for the rules).
layering:
	.ci/layering

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...

ci: vet lint layering test
