package tower

import (
	"bufio"
	"encoding/json"
	"errors"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/podsearch/podsearch/core/model"
	"github.com/podsearch/podsearch/internal/testenv"
)

// loadBase reads USE-lite's TF.js weights from the setup folder, skipping the test when
// `make setup` has not run.
func loadBase[T Float](t *testing.T) (*Model[T], map[string]model.Tensor) {
	t.Helper()
	tf, err := model.ReadTFJS(WeightsDir())
	if errors.Is(err, fs.ErrNotExist) {
		testenv.SkipOrFailModel(t, "the USE-lite TF.js weights")
	}
	if err != nil {
		t.Fatal(err)
	}
	m, err := FromTFJS[T](tf)
	if err != nil {
		t.Fatal(err)
	}
	return m, tf
}

type golden struct {
	Text      string    `json:"text"`
	IDs       []int32   `json:"ids"`
	Embedding []float64 `json:"embedding"`
}

func readGolden(t *testing.T) []golden {
	t.Helper()
	path := filepath.Join(testenv.Shared(t, "golden/use-lite"), "use-lite-golden.jsonl")
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []golden
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<26)
	for sc.Scan() {
		var g golden
		if err := json.Unmarshal(sc.Bytes(), &g); err != nil {
			t.Fatal(err)
		}
		out = append(out, g)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(out) != 200 {
		t.Fatalf("%d golden lines, want 200", len(out))
	}
	return out
}

// TestForwardMatchesGolden runs the Go forward pass (float32, batches of 16) on the 200
// reference texts' token ids: every embedding must match the reference implementation's
// with cosine >= 0.9999.
func TestForwardMatchesGolden(t *testing.T) {
	gs := readGolden(t)
	m, _ := loadBase[float32](t)
	worst := 1.0
	for start := 0; start < len(gs); start += 16 {
		batch := gs[start:min(start+16, len(gs))]
		ids := make([][]int32, len(batch))
		for i, g := range batch {
			ids[i] = g.IDs
		}
		c, err := m.Forward(ids)
		if err != nil {
			t.Fatal(err)
		}
		for i, g := range batch {
			var dot, na, nb float64
			for j, v := range c.Row(i) {
				dot += float64(v) * g.Embedding[j]
				na += float64(v) * float64(v)
				nb += g.Embedding[j] * g.Embedding[j]
			}
			cos := dot / math.Sqrt(na*nb)
			worst = math.Min(worst, cos)
			if cos < 0.9999 {
				t.Errorf("text %d (%.40q): cosine %.6f with the reference", start+i, g.Text, cos)
			}
		}
	}
	t.Logf("worst cosine over 200 golden texts: %.7f", worst)
}
