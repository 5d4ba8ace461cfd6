package adapter

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/advancedclimatesystems/gonnx/onnx"
	"google.golang.org/protobuf/proto"
)

// tinyONNX is a one-initializer ONNX model standing in for an exported tower.
func tinyONNX(t *testing.T, w ...float32) []byte {
	t.Helper()
	m := &onnx.ModelProto{IrVersion: 8, Graph: &onnx.GraphProto{Name: "g", Initializer: []*onnx.TensorProto{
		{Name: "w", Dims: []int64{int64(len(w))}, DataType: int32(onnx.TensorProto_FLOAT), FloatData: w},
	}}}
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestTowerFileRoundTrip(t *testing.T) {
	a, err := NewTower(tinyONNX(t, 1, 2, 3), "base-fp", false, map[string]any{"pairs": 10.0})
	if err != nil {
		t.Fatal(err)
	}
	if a.Kind != Tower || a.BothSides || a.DocFingerprint() != "base-fp" || len(a.Fingerprint()) != 64 {
		t.Fatalf("tower adapter %+v, fingerprint %q", a, a.Fingerprint())
	}
	b, _ := NewTower(tinyONNX(t, 1, 2, 3.5), "base-fp", false, nil)
	c, _ := NewTower(tinyONNX(t, 1, 2, 3), "other-fp", false, nil)
	if a.Fingerprint() == b.Fingerprint() || a.Fingerprint() == c.Fingerprint() {
		t.Fatal("tower fingerprint does not depend on both the weights and the base model")
	}
	path := filepath.Join(t.TempDir(), "q.tower")
	if err := a.Save(path); err != nil {
		t.Fatal(err)
	}
	got, err := LoadFor(path, "base-fp")
	if err != nil {
		t.Fatal(err)
	}
	if got.Kind != Tower || got.Fingerprint() != a.Fingerprint() || got.Tower.Path != path || got.Notes["pairs"] != 10.0 {
		t.Fatalf("loaded %+v", got)
	}
	if _, err := LoadFor(path, "other-fp"); !errors.Is(err, ErrFingerprint) {
		t.Fatalf("tower for another base model: %v", err)
	}
	if _, err := got.ApplyQuery(make([]float32, 512)); !errors.Is(err, ErrTowerVectors) {
		t.Fatalf("tower mapped a vector: %v", err)
	}
}

// TestBothSidesTowerFile: a tower trained on both sides round-trips as BothSides, has a
// fingerprint of its own (not the query tower's of the same weights), names it for
// episode vectors too, and cannot map base vectors on either side.
func TestBothSidesTowerFile(t *testing.T) {
	q, _ := NewTower(tinyONNX(t, 1, 2, 3), "base-fp", false, nil)
	a, err := NewTower(tinyONNX(t, 1, 2, 3), "base-fp", true, map[string]any{"both_sides": true})
	if err != nil {
		t.Fatal(err)
	}
	if !a.BothSides || a.Fingerprint() == q.Fingerprint() || a.DocFingerprint() != a.Fingerprint() {
		t.Fatalf("both-sides tower: both %v, fingerprint %s (query tower %s), doc fingerprint %s", a.BothSides, a.Fingerprint(), q.Fingerprint(), a.DocFingerprint())
	}
	path := filepath.Join(t.TempDir(), "both.tower")
	if err := a.Save(path); err != nil {
		t.Fatal(err)
	}
	got, err := LoadFor(path, "base-fp")
	if err != nil {
		t.Fatal(err)
	}
	if !got.BothSides || got.Fingerprint() != a.Fingerprint() {
		t.Fatalf("loaded both %v, fingerprint %s, want %s", got.BothSides, got.Fingerprint(), a.Fingerprint())
	}
	if _, err := got.ApplyDoc(make([]float32, 512)); !errors.Is(err, ErrTowerVectors) {
		t.Fatalf("both-sides tower mapped a base episode vector: %v", err)
	}
}

func TestTowerFileRefusesBadModels(t *testing.T) {
	dir := t.TempDir()
	// A plain ONNX model (the base export) is not a tuned tower.
	plain := filepath.Join(dir, "plain.onnx")
	if err := os.WriteFile(plain, tinyONNX(t, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(plain); err == nil || !strings.Contains(err.Error(), "tower metadata") {
		t.Fatalf("plain ONNX: %v", err)
	}
	// Weights changed after the fingerprint was recorded.
	a, _ := NewTower(tinyONNX(t, 1, 2), "base-fp", false, nil)
	var m onnx.ModelProto
	if err := proto.Unmarshal(a.Tower.ONNX, &m); err != nil {
		t.Fatal(err)
	}
	m.Graph.Initializer[0].FloatData[0] = 9
	bad, _ := proto.Marshal(&m)
	if _, err := Unmarshal(bad); err == nil || !strings.Contains(err.Error(), "does not match") {
		t.Fatalf("tampered tower: %v", err)
	}
	if _, err := Unmarshal([]byte(strings.Repeat("garbage!", 10))); err == nil {
		t.Fatal("garbage accepted")
	}
}

// baseEmbedder returns fixed vectors under a fingerprint.
type baseEmbedder struct{ fp string }

func (b baseEmbedder) Embed(_ context.Context, ids [][]int32) ([][]float32, error) {
	out := make([][]float32, len(ids))
	for i := range out {
		out[i] = make([]float32, 512)
		out[i][i%512] = 1
	}
	return out, nil
}

func (b baseEmbedder) Fingerprint() string { return b.fp }

func TestWrapTower(t *testing.T) {
	a, _ := NewTower(tinyONNX(t, 1), "base-fp", false, nil)
	if _, err := Wrap(baseEmbedder{"other"}, a, Doc); !errors.Is(err, ErrFingerprint) {
		t.Fatalf("wrap over another base model: %v", err)
	}
	// Episodes pass through the base encoder unchanged, under the base fingerprint.
	e, err := Wrap(baseEmbedder{"base-fp"}, a, Doc)
	if err != nil {
		t.Fatal(err)
	}
	vs, err := e.Embed(context.Background(), [][]int32{{1}, {2}})
	if err != nil || len(vs) != 2 || vs[1][1] != 1 || e.Fingerprint() != "base-fp" {
		t.Fatalf("doc side: %v %v %s", vs, err, e.Fingerprint())
	}
	// Queries need the tower loaded from a file.
	if _, err := Wrap(baseEmbedder{"base-fp"}, a, Query); err == nil {
		t.Fatal("in-memory tower wrapped for queries")
	}
}
