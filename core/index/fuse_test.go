package index

import (
	"math"
	"testing"
)

// TestFuseHandComputed checks both fusions on two short rankings against values worked out
// by hand, and the refusal of bad options.
func TestFuseHandComputed(t *testing.T) {
	dense := []Ranked[string]{{"a", 0.9, 1}, {"b", 0.7, 2}, {"c", 0.5, 3}}
	kw := []Ranked[string]{{"c", 12, 3}, {"d", 8, 4}, {"a", 2, 1}}
	// Convex, w = 0.3: a = 0.3*1 + 0.7*0 = 0.3; b = 0.3*0.5 = 0.15; c = 0 + 0.7*1 = 0.7;
	// d = 0.7*0.6 = 0.42.
	got, err := Fuse(dense, kw, 3, HybridOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := []Ranked[string]{{"c", 0.7, 3}, {"d", 0.42, 4}, {"a", 0.3, 1}}
	same := func(got, want []Ranked[string]) bool {
		if len(got) != len(want) {
			return false
		}
		for i := range got {
			if got[i].Key != want[i].Key || got[i].Tie != want[i].Tie || math.Abs(float64(got[i].Score-want[i].Score)) > 1e-6 {
				return false
			}
		}
		return true
	}
	if !same(got, want) {
		t.Fatalf("convex: %v, want %v", got, want)
	}
	// RRF, k=60, equal weights: a = 0.5/61 + 0.5/63, c = 0.5/63 + 0.5/61 (a tie, broken by
	// Tie: a first), b = 0.5/62, d = 0.5/62 (tie: b first).
	got, err = Fuse(dense, kw, 4, HybridOptions{Fusion: RRF})
	if err != nil {
		t.Fatal(err)
	}
	ac, bd := float32(0.5/61+0.5/63), float32(0.5/62)
	if !same(got, []Ranked[string]{{"a", ac, 1}, {"c", ac, 3}, {"b", bd, 2}, {"d", bd, 4}}) {
		t.Fatalf("rrf: %v", got)
	}
	for _, bad := range []HybridOptions{{Fusion: "max"}, {DenseWeight: 1.5}, {DenseWeight: -0.1}} {
		if _, err := Fuse(dense, kw, 3, bad); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
	if got, err := Fuse[string](nil, nil, 3, HybridOptions{}); err != nil || len(got) != 0 {
		t.Fatalf("empty rankings: %v, %v", got, err)
	}
}
