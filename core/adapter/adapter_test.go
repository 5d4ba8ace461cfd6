package adapter

import (
	"bytes"
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/podsearch/podsearch/core/vec"
)

const baseFP = "0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0"

func randUnit(rng *rand.Rand, d int) []float32 {
	v := make([]float32, d)
	for i := range v {
		v[i] = float32(rng.NormFloat64())
	}
	vec.Normalize(v)
	return v
}

func maxDiff(a, b []float32) float64 {
	m := 0.0
	for i := range a {
		m = math.Max(m, math.Abs(float64(a[i]-b[i])))
	}
	return m
}

func TestNewIsIdentity(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, cfg := range []Config{{Kind: Linear, Dim: 64}, {Kind: LowRank, Dim: 64, Rank: 8, Seed: 3}} {
		a, err := New(cfg, baseFP)
		if err != nil {
			t.Fatal(err)
		}
		x := randUnit(rng, 64)
		y, err := a.Apply(x)
		if err != nil {
			t.Fatal(err)
		}
		if d := maxDiff(x, y); d > 1e-6 {
			t.Errorf("%s: new adapter is not the identity (max diff %g)", cfg.Kind, d)
		}
	}
}

func TestApplyMathAndSides(t *testing.T) {
	// Linear, dim 2: W = [[2, 0], [1, 1]], x = (1, 0) -> z = (2, 1) -> (2, 1)/sqrt 5.
	a, _ := New(Config{Kind: Linear, Dim: 2}, baseFP)
	a.W = []float32{2, 0, 1, 1}
	y, err := a.ApplyQuery([]float32{1, 0})
	if err != nil {
		t.Fatal(err)
	}
	want := []float32{2 / float32(math.Sqrt(5)), 1 / float32(math.Sqrt(5))}
	if maxDiff(y, want) > 1e-6 {
		t.Errorf("linear apply = %v, want %v", y, want)
	}
	// Query-only adapter leaves documents alone (but unit length).
	d, _ := a.ApplyDoc([]float32{3, 4})
	if maxDiff(d, []float32{0.6, 0.8}) > 1e-6 {
		t.Errorf("doc side = %v", d)
	}
	if a.DocFingerprint() != baseFP {
		t.Errorf("query-only adapter changed the doc fingerprint")
	}
	a.BothSides = true
	d, _ = a.ApplyDoc([]float32{1, 0})
	if maxDiff(d, want) > 1e-6 {
		t.Errorf("both-sides doc = %v", d)
	}
	if a.DocFingerprint() != a.Fingerprint() {
		t.Errorf("both-sides doc fingerprint should be the tuned one")
	}

	// LowRank, dim 2 rank 1: U = (1, 0), V = (0, 1): z = x + U (Vᵀx) = (x0 + x1, x1).
	l, _ := New(Config{Kind: LowRank, Dim: 2, Rank: 1}, baseFP)
	l.U = []float32{1, 0}
	l.V = []float32{0, 1}
	y, _ = l.Apply([]float32{0, 1})
	if maxDiff(y, []float32{1 / float32(math.Sqrt2), 1 / float32(math.Sqrt2)}) > 1e-6 {
		t.Errorf("lowrank apply = %v", y)
	}
	if _, err := l.Apply([]float32{1}); err == nil {
		t.Error("wrong length accepted")
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	for _, cfg := range []Config{{Kind: Linear}, {Kind: "cubic", Dim: 4}, {Kind: LowRank, Dim: 4, Rank: 0}, {Kind: LowRank, Dim: 4, Rank: 5}} {
		if _, err := New(cfg, baseFP); err == nil {
			t.Errorf("New(%+v) accepted", cfg)
		}
	}
}

func TestSaveLoadRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	dir := t.TempDir()
	for _, cfg := range []Config{{Kind: Linear, Dim: 16, BothSides: true}, {Kind: LowRank, Dim: 16, Rank: 4, Seed: 9}} {
		a, _ := New(cfg, baseFP)
		for i := range a.W {
			a.W[i] += float32(rng.NormFloat64() * 0.1)
		}
		for i := range a.U {
			a.U[i] = float32(rng.NormFloat64() * 0.1)
		}
		a.Notes = map[string]any{"epochs": 1.0}
		path := filepath.Join(dir, string(cfg.Kind)+".adapter")
		if err := a.Save(path); err != nil {
			t.Fatal(err)
		}
		b, err := Load(path)
		if err != nil {
			t.Fatal(err)
		}
		if b.Fingerprint() != a.Fingerprint() || b.BothSides != a.BothSides || b.Rank != a.Rank || b.Notes["epochs"] != 1.0 {
			t.Errorf("%s: round trip changed the adapter", cfg.Kind)
		}
		x := randUnit(rng, 16)
		ya, _ := a.Apply(x)
		yb, _ := b.Apply(x)
		if maxDiff(ya, yb) != 0 {
			t.Errorf("%s: loaded adapter computes differently", cfg.Kind)
		}
		if _, err := LoadFor(path, "another-model"); !errors.Is(err, ErrFingerprint) {
			t.Errorf("LoadFor with the wrong model: %v", err)
		}
		if _, err := LoadFor(path, baseFP); err != nil {
			t.Errorf("LoadFor: %v", err)
		}
	}
}

func TestFingerprint(t *testing.T) {
	a, _ := New(Config{Kind: Linear, Dim: 8}, baseFP)
	f0 := a.Fingerprint()
	if f0 == baseFP || len(f0) != 64 {
		t.Fatalf("tuned fingerprint %q", f0)
	}
	a.W[3] = 1e-7
	if a.Fingerprint() == f0 {
		t.Error("changing a weight kept the fingerprint")
	}
	b, _ := New(Config{Kind: Linear, Dim: 8}, "other")
	if b.Fingerprint() == f0 {
		t.Error("another base model gave the same tuned fingerprint")
	}
}

func TestCorruptionDetected(t *testing.T) {
	a, _ := New(Config{Kind: LowRank, Dim: 8, Rank: 2, Seed: 1}, baseFP)
	good, err := a.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < len(good); i += 7 {
		bad := bytes.Clone(good)
		bad[i] ^= 0x40
		if _, err := Unmarshal(bad); err == nil {
			t.Fatalf("flipped byte %d accepted", i)
		}
	}
	for _, n := range []int{0, 5, len(good) / 2, len(good) - 1} {
		if _, err := Unmarshal(good[:n]); err == nil {
			t.Fatalf("truncated to %d bytes accepted", n)
		}
	}
}

// stubEncoder returns fixed vectors: enough to test the wrapper's plumbing.
type stubEncoder struct{ fp string }

func (s stubEncoder) Embed(_ context.Context, ids [][]int32) ([][]float32, error) {
	out := make([][]float32, len(ids))
	for i := range ids {
		out[i] = []float32{1, 0}
	}
	return out, nil
}
func (s stubEncoder) Fingerprint() string { return s.fp }

func TestWrap(t *testing.T) {
	a, _ := New(Config{Kind: Linear, Dim: 2}, baseFP)
	a.W = []float32{0, 1, 1, 0} // swap
	if _, err := Wrap(stubEncoder{"other"}, a, Query); !errors.Is(err, ErrFingerprint) {
		t.Fatalf("Wrap with wrong model: %v", err)
	}
	q, err := Wrap(stubEncoder{baseFP}, a, Query)
	if err != nil {
		t.Fatal(err)
	}
	vs, err := q.Embed(context.Background(), [][]int32{{1}, {2}})
	if err != nil || len(vs) != 2 || maxDiff(vs[1], []float32{0, 1}) > 0 {
		t.Fatalf("Embed = %v, %v", vs, err)
	}
	if q.Fingerprint() != a.Fingerprint() {
		t.Error("query embedder does not report the tuned fingerprint")
	}
	d, _ := Wrap(stubEncoder{baseFP}, a, Doc)
	if d.Fingerprint() != baseFP {
		t.Error("doc embedder of a query-only adapter should keep the base fingerprint")
	}
	vs, _ = d.Embed(context.Background(), [][]int32{{1}})
	if maxDiff(vs[0], []float32{1, 0}) > 0 {
		t.Errorf("doc side changed by a query-only adapter: %v", vs[0])
	}
}

func FuzzUnmarshal(f *testing.F) {
	a, _ := New(Config{Kind: LowRank, Dim: 4, Rank: 1, Seed: 1}, baseFP)
	good, _ := a.Marshal()
	l, _ := New(Config{Kind: Linear, Dim: 3}, baseFP)
	good2, _ := l.Marshal()
	f.Add(good)
	f.Add(good2)
	f.Add([]byte(magic))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		a, err := Unmarshal(b)
		if err != nil {
			return
		}
		if _, err := a.Apply(make([]float32, a.Dim)); err != nil {
			t.Fatalf("accepted adapter cannot apply: %v", err)
		}
	})
}
