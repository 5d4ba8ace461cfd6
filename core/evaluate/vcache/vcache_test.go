package vcache

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func fakeEncoder(calls *[]int) func(context.Context, []string) ([][]float32, error) {
	return func(_ context.Context, ts []string) ([][]float32, error) {
		*calls = append(*calls, len(ts))
		out := make([][]float32, len(ts))
		for i, s := range ts {
			out[i] = []float32{float32(len(s)), float32(s[0]), -1.5}
		}
		return out, nil
	}
}

func TestGetOrComputePerText(t *testing.T) {
	dir := t.TempDir()
	var calls []int
	enc := fakeEncoder(&calls)
	ctx := context.Background()
	c := &Cache{Dir: dir}
	v1, hits, err := c.GetOrCompute(ctx, "fpA", []string{"apple", "banana", "apple"}, enc)
	if err != nil || hits != 0 || len(calls) != 1 || calls[0] != 2 {
		t.Fatalf("first call: hits %d calls %v err %v", hits, calls, err)
	}
	if v1[0][0] != 5 || v1[2][0] != 5 || v1[1][0] != 6 {
		t.Fatalf("vectors out of order: %v", v1)
	}
	// A second list sharing one text encodes only the new one.
	v2, hits, err := c.GetOrCompute(ctx, "fpA", []string{"banana", "cherry"}, enc)
	if err != nil || hits != 1 || calls[1] != 1 || v2[1][1] != 'c' {
		t.Fatalf("second call: hits %d calls %v err %v", hits, calls, err)
	}
	// A new process (new Cache) reads the file back.
	c2 := &Cache{Dir: dir}
	v3, hits, err := c2.GetOrCompute(ctx, "fpA", []string{"cherry", "apple", "banana"}, enc)
	if err != nil || hits != 3 || len(calls) != 2 || v3[0][1] != 'c' {
		t.Fatalf("reload: hits %d calls %v err %v", hits, calls, err)
	}
	// Another model does not see these vectors.
	if _, hits, _ := c2.GetOrCompute(ctx, "fpB", []string{"apple"}, enc); hits != 0 {
		t.Error("another fingerprint hit the cache")
	}
	// A damaged tail is dropped and rewritten; earlier records survive.
	p := filepath.Join(dir, "fpA.veclog")
	b, _ := os.ReadFile(p)
	b[len(b)-3] ^= 1 // inside the last record (cherry)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	calls = calls[:0]
	c3 := &Cache{Dir: dir}
	v4, hits, err := c3.GetOrCompute(ctx, "fpA", []string{"apple", "banana", "cherry"}, enc)
	if err != nil || hits != 2 || len(calls) != 1 || calls[0] != 1 || v4[2][1] != 'c' {
		t.Fatalf("after damage: hits %d calls %v err %v", hits, calls, err)
	}
	c4 := &Cache{Dir: dir}
	if _, hits, _ := c4.GetOrCompute(ctx, "fpA", []string{"apple", "banana", "cherry"}, enc); hits != 3 {
		t.Errorf("rewritten tail not readable: %d hits", hits)
	}
	// Errors pass through; a bad fingerprint is refused; no Dir means no caching.
	failing := func(context.Context, []string) ([][]float32, error) { return nil, errors.New("boom") }
	if _, _, err := c4.GetOrCompute(ctx, "fpC", []string{"x"}, failing); err == nil {
		t.Error("compute error swallowed")
	}
	if _, _, err := c4.GetOrCompute(ctx, "../escape", []string{"x"}, enc); err == nil {
		t.Error("path-like fingerprint accepted")
	}
	calls = calls[:0]
	none := &Cache{}
	if _, hits, err := none.GetOrCompute(ctx, "fpA", []string{"apple"}, enc); err != nil || hits != 0 || len(calls) != 1 {
		t.Errorf("no-dir cache: hits %d calls %v err %v", hits, calls, err)
	}
}

func FuzzParse(f *testing.F) {
	dir := f.TempDir()
	c := &Cache{Dir: dir}
	var calls []int
	_, _, _ = c.GetOrCompute(context.Background(), "fp", []string{"a", "bb"}, fakeEncoder(&calls))
	good, _ := os.ReadFile(filepath.Join(dir, "fp.veclog"))
	f.Add(good)
	f.Add([]byte(magic))
	f.Fuzz(func(t *testing.T, b []byte) {
		l := &vlog{vecs: map[[hashLen]byte][]float32{}}
		if err := l.parse(b, "fp"); err != nil {
			return
		}
		if l.good > int64(len(b)) || l.good < int64(hdrLen) {
			t.Fatalf("valid prefix %d of %d bytes", l.good, len(b))
		}
		for _, v := range l.vecs {
			if len(v) != l.dim {
				t.Fatal("vector of the wrong width")
			}
		}
	})
}
