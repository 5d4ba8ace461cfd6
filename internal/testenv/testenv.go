// Package testenv finds the files tests need outside the repository: the read-only shared
// data folder (../shared beside the project root) and the model set up by `podsearch setup`.
// Each lookup skips the test with a clear message when the file is absent, unless the
// environment demands it (PODSEARCH_REQUIRE_SHARED=1, PODSEARCH_REQUIRE_MODEL=1, as CI sets),
// in which case the test fails instead.
package testenv

import (
	"os"
	"path/filepath"
	"testing"
)

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
		if os.Getenv("PODSEARCH_REQUIRE_SHARED") == "1" {
			tb.Fatalf("shared data %s is required (PODSEARCH_REQUIRE_SHARED=1) but absent", p)
		}
		tb.Skipf("shared data %s is absent (a user's clone has no ../shared): skipping", p)
	}
	return p
}

// SharedPath returns the path of rel inside the shared data folder and whether it exists,
// without skipping (for optional seeds such as fuzz corpora).
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
	if os.Getenv("PODSEARCH_REQUIRE_MODEL") == "1" {
		tb.Fatalf("%s is required (PODSEARCH_REQUIRE_MODEL=1) but absent: run `make setup`", what)
	}
	tb.Skipf("%s is absent: run `make setup` (or `podsearch setup`) to fetch the model; skipping", what)
}
