package index

import (
	"math"
	"testing"
)

// TestFuseHandComputed checks every fusion on two short rankings against values worked out
// by hand, and the refusal of bad options.
func TestFuseHandComputed(t *testing.T) {
	dense := []Ranked[string]{{"a", 0.9, 1}, {"b", 0.7, 2}, {"c", 0.5, 3}}
	kw := []Ranked[string]{{"c", 12, 3}, {"d", 8, 4}, {"a", 2, 1}}
	// Convex, w = 0.3: a = 0.3*1 + 0.7*0 = 0.3; b = 0.3*0.5 = 0.15; c = 0 + 0.7*1 = 0.7;
	// d = 0.7*0.6 = 0.42.
	got, err := Fuse(dense, kw, 3, HybridOptions{Fusion: Convex})
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
	// ZScore (the default fusion), w = 0.5. Dense: mean 0.7, std sqrt(0.08/3) = 0.163299, so
	// z(a) = 1.224745, z(b) = 0, z(c) = -1.224745 (lowest). Keyword: mean 22/3, std
	// sqrt(152/9) = 4.109609, z(c) = 1.135550, z(d) = 0.162221, z(a) = -1.297771 (lowest).
	// a = 0.5*1.224745 - 0.5*1.297771 = -0.036513; c = 0.5*(-1.224745 + 1.135550) =
	// -0.044598; d = 0.5*(-1.224745 + 0.162221) = -0.531262 (missing from dense: lowest);
	// b = 0.5*0 - 0.5*1.297771 = -0.648886 (missing from keyword).
	got, err = Fuse(dense, kw, 4, HybridOptions{DenseWeight: 0.5})
	if err != nil {
		t.Fatal(err)
	}
	if !same(got, []Ranked[string]{{"a", -0.036513, 1}, {"c", -0.044598, 3}, {"d", -0.531262, 4}, {"b", -0.648886, 2}}) {
		t.Fatalf("zscore: %v", got)
	}
	// Zero options are ZScore at DefaultDenseWeight.
	got, err = Fuse(dense, kw, 4, HybridOptions{})
	if err != nil {
		t.Fatal(err)
	}
	explicit, err := Fuse(dense, kw, 4, HybridOptions{Fusion: ZScore, DenseWeight: DefaultDenseWeight})
	if err != nil || !same(got, explicit) {
		t.Fatalf("default fusion %v, ZScore at DefaultDenseWeight %v (%v)", got, explicit, err)
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
