package vcache

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestGetOrCompute(t *testing.T) {
	c := Cache{Dir: t.TempDir()}
	texts := []string{"staying healthy over christmas", "true crime in the 1920s"}
	calls := 0
	compute := func(_ context.Context, ts []string) ([][]float32, error) {
		calls++
		out := make([][]float32, len(ts))
		for i, s := range ts {
			out[i] = []float32{float32(len(s)), float32(i), -1.5}
		}
		return out, nil
	}
	ctx := context.Background()
	v1, hit, err := c.GetOrCompute(ctx, "fpA", texts, compute)
	if err != nil || hit || calls != 1 {
		t.Fatalf("first call: hit %v calls %d err %v", hit, calls, err)
	}
	v2, hit, err := c.GetOrCompute(ctx, "fpA", texts, compute)
	if err != nil || !hit || calls != 1 || v2[0][0] != v1[0][0] || v2[1][2] != -1.5 {
		t.Fatalf("second call: hit %v calls %d err %v", hit, calls, err)
	}
	// Another model or other texts miss.
	if _, hit, _ := c.GetOrCompute(ctx, "fpB", texts, compute); hit {
		t.Error("another fingerprint hit the cache")
	}
	if _, hit, _ := c.GetOrCompute(ctx, "fpA", texts[:1], compute); hit {
		t.Error("other texts hit the cache")
	}
	// A damaged file is a miss, then rewritten.
	p := c.path(Key("fpA", texts))
	b, _ := os.ReadFile(p)
	b[len(b)/2] ^= 1
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	before := calls
	if _, hit, _ := c.GetOrCompute(ctx, "fpA", texts, compute); hit || calls != before+1 {
		t.Error("damaged entry was trusted")
	}
	failing := func(context.Context, []string) ([][]float32, error) { return nil, errors.New("boom") }
	if _, _, err := c.GetOrCompute(ctx, "fpC", texts, failing); err == nil {
		t.Error("compute error swallowed")
	}
	// Keys separate text boundaries: ["ab","c"] vs ["a","bc"].
	if Key("f", []string{"ab", "c"}) == Key("f", []string{"a", "bc"}) {
		t.Error("key ignores text boundaries")
	}
	if _, err := os.Stat(filepath.Dir(p)); err != nil {
		t.Error(err)
	}
}

func FuzzDecode(f *testing.F) {
	good, _ := Encode([][]float32{{1, 2}, {3, 4}}, "fp")
	f.Add(good)
	f.Add([]byte(magic))
	f.Fuzz(func(t *testing.T, b []byte) {
		vs, err := Decode(b, "fp")
		if err != nil {
			return
		}
		again, err := Encode(vs, "fp")
		if err != nil || !bytes.Equal(again, b) {
			t.Fatalf("decoded file does not re-encode to itself: %v", err)
		}
	})
}
