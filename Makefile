GO ?= go

.PHONY: all build deb clean test vet lint layering fmt bench fuzz ci crash

# What `make build` stamps into the binary (quotawatch version, and
# quotawatch_build_info): a plain `go build` may embed no revision at all
# (GOFLAGS=-buildvcs=false). Without a v* tag the version is a Go-style
# pseudo-version of the commit. SOURCE_DATE_EPOCH, if set, fixes the date.
REVISION ?= $(shell git rev-parse HEAD 2>/dev/null)$(shell git diff --quiet HEAD 2>/dev/null || echo -dirty)
VERSION ?= $(shell git describe --tags --match 'v[0-9]*' --dirty 2>/dev/null || \
	echo v0.0.0-$$(TZ=UTC git log -1 --format=%cd --date=format-local:%Y%m%d%H%M%S)-$$(git rev-parse --short=12 HEAD))
BUILD_DATE ?= $(shell date -u -d @$${SOURCE_DATE_EPOCH:-$$(date +%s)} +%Y-%m-%dT%H:%M:%SZ)
LDFLAGS := -s -w -X main.version=$(VERSION) -X main.revision=$(REVISION) -X main.buildDate=$(BUILD_DATE)
BIN := build/quotawatch

# nfpm, pinned, through the module proxy (like staticcheck): as a go.mod
# tool it would add its ~60 modules to the daemon's module graph.
NFPM := $(GO) run github.com/goreleaser/nfpm/v2/cmd/nfpm@v2.45.2

all: vet test

# A static, stamped binary in build/.
build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/quotawatch

# The Debian package in build/: the binary, the unit, a default config, the
# README and the man page (rendered from the command table).
deb: build
	$(BIN) man | gzip -n -9 >build/quotawatch.1.gz
	VERSION=$(VERSION) GOARCH=$$($(GO) env GOARCH) $(NFPM) package --config packaging/nfpm.yaml --packager deb --target build/

clean:
	rm -rf build

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

# The crash test in full: the built daemon killed 50 times (SIGKILL and
# SIGTERM, often while the cloud holds a reassign), restarted each time,
# then checked against the cloud, the journal, Slack and the history. Set
# QUOTAWATCH_CRASH_SEED to replay a run.
CRASH_KILLS ?= 50
crash: build
	QUOTAWATCH_CRASH_BIN=$(CURDIR)/$(BIN) QUOTAWATCH_CRASH_KILLS=$(CRASH_KILLS) \
		$(GO) test -count=1 -timeout 10m -run '^TestCrash$$' -v ./cmd/quotawatch/

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...

ci: vet lint layering test crash
