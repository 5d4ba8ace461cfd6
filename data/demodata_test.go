package demodata

import (
	"bufio"
	"io"
	"testing"
)

func TestEmbeddedFiles(t *testing.T) {
	rc, err := Open(TaddyFile)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	sc := bufio.NewScanner(rc)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	lines := 0
	for sc.Scan() {
		lines++
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	// The Taddy sample README states 10,544 episodes.
	if lines != 10544 {
		t.Fatalf("Taddy sample has %d lines, want 10544", lines)
	}
	feeds := Feeds()
	if len(feeds) != 8 {
		t.Fatalf("got %d feeds, want 8: %v", len(feeds), feeds)
	}
	for _, f := range feeds {
		rc, err := Open(f)
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil || len(b) == 0 {
			t.Fatalf("%s: %d bytes, %v", f, len(b), err)
		}
	}
	if got := BaseName("demo/rss/no-agenda.xml.gz"); got != "no-agenda.xml" {
		t.Fatalf("BaseName = %q", got)
	}
}
