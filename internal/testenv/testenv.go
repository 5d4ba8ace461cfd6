// Package testenv finds what tests need outside the repository (the read-only shared data
// folder, ../shared beside the project root; the model set up by `podsearch setup`; installed
// programs) and is the one place a test skips for a missing resource. Each skip names a
// resource, and the environment variable PODSEARCH_REQUIRE_<RESOURCE>=1 turns it into a
// failure, so a machine that is meant to have the resource (CI) cannot pass by skipping:
//
//	PODSEARCH_REQUIRE_MODEL     the model, tokenizer and ONNX Runtime (`make setup`)
//	PODSEARCH_REQUIRE_SHARED    ../shared (or $PODSEARCH_SHARED), also the optional fuzz seeds
//	PODSEARCH_REQUIRE_REDIS     redis-server and redis-cli
//	PODSEARCH_REQUIRE_CHROMIUM  a headless chromium
//	PODSEARCH_REQUIRE_FAISS     /usr/bin/python3 with faiss and numpy (python3-faiss)
//	PODSEARCH_REQUIRE_LINUX     Linux host facilities: /proc, the whole 127.0.0.0/8 loopback
//	PODSEARCH_REQUIRE_DEMO      the demo index (`podsearch ingest --demo`, `podsearch index`),
//	                            read only by benchmarks
//
// .ci/run sets all but PODSEARCH_REQUIRE_DEMO (CI runs no benchmarks). No test skips on
// testing.Short().
package testenv

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// Resources requirable with PODSEARCH_REQUIRE_<name>=1 (see the package comment).
const (
	Model      = "MODEL"
	SharedData = "SHARED"
	Redis      = "REDIS"
	Chromium   = "CHROMIUM"
	FAISS      = "FAISS"
	Linux      = "LINUX"
	Demo       = "DEMO"
)

// Required reports whether PODSEARCH_REQUIRE_<resource>=1 is set.
func Required(resource string) bool {
	return os.Getenv("PODSEARCH_REQUIRE_"+resource) == "1"
}

// SkipOrFail skips the test because resource is absent (the message says what is missing and
// how to get it), or fails it when PODSEARCH_REQUIRE_<resource>=1.
func SkipOrFail(tb testing.TB, resource, format string, args ...any) {
	tb.Helper()
	msg := fmt.Sprintf(format, args...)
	if Required(resource) {
		tb.Fatalf("%s (required: PODSEARCH_REQUIRE_%s=1)", msg, resource)
		return
	}
	tb.Skipf("%s: skipping (PODSEARCH_REQUIRE_%s=1 fails instead)", msg, resource)
}

// Root returns the project root (the folder holding go.mod), found from the working directory.
func Root(tb testing.TB) string {
	tb.Helper()
	dir, err := os.Getwd()
	if err != nil {
		tb.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			tb.Fatal("testenv: no go.mod above the working directory")
		}
		dir = parent
	}
}

// Shared returns the path of rel inside the shared data folder (PODSEARCH_SHARED, default
// ../shared beside the project root), skipping the test when it is absent.
func Shared(tb testing.TB, rel string) string {
	tb.Helper()
	p, ok := SharedPath(rel)
	if !ok {
		SkipOrFail(tb, SharedData, "shared data %s is absent (a user's clone has no ../shared)", p)
	}
	return p
}

// SharedSeeds returns the path of rel inside the shared data folder and whether it exists,
// for optional extras such as fuzz seeds: absent, the test goes on without them, unless
// PODSEARCH_REQUIRE_SHARED=1, where it fails.
func SharedSeeds(tb testing.TB, rel string) (string, bool) {
	tb.Helper()
	p, ok := SharedPath(rel)
	if !ok && Required(SharedData) {
		tb.Fatalf("shared data %s is absent (required: PODSEARCH_REQUIRE_SHARED=1)", p)
	}
	return p, ok
}

// SharedPath returns the path of rel inside the shared data folder and whether it exists,
// without skipping or failing (tests use SharedSeeds for optional seeds).
func SharedPath(rel string) (string, bool) {
	base := os.Getenv("PODSEARCH_SHARED")
	if base == "" {
		dir, err := os.Getwd()
		if err != nil {
			return "", false
		}
		for {
			if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
				break
			}
			parent := filepath.Dir(dir)
			if parent == dir {
				return "", false
			}
			dir = parent
		}
		base = filepath.Join(dir, "..", "shared")
	}
	p := filepath.Join(base, rel)
	_, err := os.Stat(p)
	return p, err == nil
}

// SkipOrFailModel skips the test because the model (what) has not been set up, or fails it
// when PODSEARCH_REQUIRE_MODEL=1 (CI runs `make setup` first, so absence there is a bug).
func SkipOrFailModel(tb testing.TB, what string) {
	tb.Helper()
	SkipOrFail(tb, Model, "%s is absent: run `make setup` (or `podsearch setup`) to fetch the model", what)
}
