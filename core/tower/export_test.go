package tower

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/podsearch/podsearch/core/encoder"
	"github.com/podsearch/podsearch/core/model"
	"github.com/podsearch/podsearch/internal/testenv"
)

// TestExportedTunedModelMatchesGo changes every trainable weight of the real model a
// little (as training does), exports it with core/model's exporter and runs the ONNX model
// in ONNX Runtime: its embeddings must equal the Go forward pass of the same weights
// (cosine >= 0.9999), so every tuned tensor reaches the graph under the right name.
func TestExportedTunedModelMatchesGo(t *testing.T) {
	gs := readGolden(t)
	m, base := loadBase[float32](t)
	rng := rand.New(rand.NewPCG(5, 5))
	for _, p := range m.Params() {
		for i := range p.Data {
			p.Data[i] *= float32(1 + 0.05*rng.NormFloat64())
		}
	}
	onnxBytes, err := model.Export(m.TFJS(base))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "tuned.onnx")
	if err := os.WriteFile(path, onnxBytes, 0o644); err != nil {
		t.Fatal(err)
	}
	sess, err := encoder.Open(encoder.Options{ModelPath: path, IntraOpThreads: 1})
	if errors.Is(err, encoder.ErrNotSetUp) {
		testenv.SkipOrFailModel(t, "ONNX Runtime")
	}
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	var ids [][]int32
	for _, g := range gs[:40] {
		ids = append(ids, g.IDs)
	}
	ort, err := sess.Embed(context.Background(), ids)
	if err != nil {
		t.Fatal(err)
	}
	c, err := m.Forward(ids)
	if err != nil {
		t.Fatal(err)
	}
	moved := 0.0
	for i := range ids {
		var dot, na, nb, dg float64
		for j, v := range c.Row(i) {
			dot += float64(v) * float64(ort[i][j])
			na += float64(v) * float64(v)
			nb += float64(ort[i][j]) * float64(ort[i][j])
			dg += float64(v) * gs[i].Embedding[j]
		}
		if cos := dot / math.Sqrt(na*nb); cos < 0.9999 {
			t.Errorf("text %d: ONNX Runtime and Go disagree on the tuned model (cosine %.6f)", i, cos)
		}
		moved = math.Max(moved, 1-dg)
	}
	if moved < 1e-3 {
		t.Errorf("the perturbed model's outputs equal the base model's (largest 1-cosine %g): weights did not reach the export", moved)
	}
}
