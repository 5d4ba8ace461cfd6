package testenv

import (
	"fmt"
	"testing"
)

// recorder is a testing.TB that records Fatalf and Skipf instead of ending the test.
type recorder struct {
	testing.TB
	fatal, skip string
}

func (r *recorder) Helper()                        {}
func (r *recorder) Fatalf(format string, a ...any) { r.fatal = fmt.Sprintf(format, a...) }
func (r *recorder) Skipf(format string, a ...any)  { r.skip = fmt.Sprintf(format, a...) }

// TestSkipOrFail checks a missing resource skips the test, and fails it instead when
// PODSEARCH_REQUIRE_<resource>=1.
func TestSkipOrFail(t *testing.T) {
	for _, req := range []string{"", "0", "1"} {
		t.Setenv("PODSEARCH_REQUIRE_FAISS", req)
		r := &recorder{TB: t}
		SkipOrFail(r, FAISS, "faiss is %s", "absent")
		if req == "1" {
			if r.fatal != "faiss is absent (required: PODSEARCH_REQUIRE_FAISS=1)" || r.skip != "" {
				t.Errorf("required: fatal %q, skip %q", r.fatal, r.skip)
			}
		} else if r.skip != "faiss is absent: skipping (PODSEARCH_REQUIRE_FAISS=1 fails instead)" || r.fatal != "" {
			t.Errorf("PODSEARCH_REQUIRE_FAISS=%q: fatal %q, skip %q", req, r.fatal, r.skip)
		}
	}
}

// TestSharedSeeds checks an absent optional seed file is reported absent, and fails the test
// under PODSEARCH_REQUIRE_SHARED=1.
func TestSharedSeeds(t *testing.T) {
	t.Setenv("PODSEARCH_SHARED", t.TempDir())
	for _, req := range []string{"", "1"} {
		t.Setenv("PODSEARCH_REQUIRE_SHARED", req)
		r := &recorder{TB: t}
		if _, ok := SharedSeeds(r, "no/such/file"); ok {
			t.Fatal("absent file reported present")
		}
		if (r.fatal != "") != (req == "1") || r.skip != "" {
			t.Errorf("PODSEARCH_REQUIRE_SHARED=%q: fatal %q, skip %q", req, r.fatal, r.skip)
		}
	}
}
