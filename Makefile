# pxewim build: one static binary, reproducible (the same source and VERSION give the same bytes).
#
#   make                      build ./pxewim for this machine
#   make VERSION=1.2.0        stamp a release version (pxewim --version prints it)
#   make GOARCH=arm64         cross-compile (no cgo, so any GOOS/GOARCH Go supports)
#   make reproducible         build twice (the second time with an empty build cache) and compare
#   make deb                  Debian packages for amd64 and arm64 in dist/ (packaging/mkdeb, nfpm)
#
# Why each flag: CGO_ENABLED=0 gives a static binary with no libc dependency; -trimpath drops
# the build machine's paths; -buildvcs=false keeps git state out (VERSION says what it is);
# -buildid= empties the linker's build ID (it hashes inputs that include the toolchain path);
# -s -w drop the symbol table and DWARF. The Go toolchain version still matters: go.mod pins it.

VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
GO      ?= go
OUT     ?= pxewim
LDFLAGS := -s -w -buildid= -X main.version=$(VERSION)
GOFLAGS_BUILD := -trimpath -buildvcs=false -ldflags "$(LDFLAGS)"
export CGO_ENABLED := 0

.PHONY: build reproducible deb test
build:
	$(GO) build $(GOFLAGS_BUILD) -o $(OUT) ./cmd/pxewim

reproducible:
	@tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && \
	$(GO) build $(GOFLAGS_BUILD) -o $$tmp/a ./cmd/pxewim && \
	GOCACHE=$$tmp/cache $(GO) build $(GOFLAGS_BUILD) -o $$tmp/b ./cmd/pxewim && \
	sha256sum $$tmp/a $$tmp/b && cmp $$tmp/a $$tmp/b && echo "reproducible: identical"

deb:
	$(GO) run ./packaging/mkdeb -arch amd64,arm64 -o dist/

test:
	./test.sh
