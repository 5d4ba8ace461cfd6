package evaluate

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/podsearch/podsearch/core/index"
	"github.com/podsearch/podsearch/internal/testmodel"
)

// TestRunBEIREmptyDocuments runs the protocol with the real encoder on a tiny BEIR folder
// holding documents without text (as Cranfield does): the empty documents are left out and
// counted in the notes, and the section has dense and BM25 rows (no adapter: base only) and
// base Recall@k curves.
func TestRunBEIREmptyDocuments(t *testing.T) {
	enc := testmodel.NewEncoder(t)
	sess := enc.Sess
	r, err := Run(context.Background(), enc, Inputs{BEIR: "testdata/beir-empty", Split: "test"},
		Options{Keyword: true, HybridWeight: 0.3, CurveK: 5})
	if err != nil {
		t.Fatal(err)
	}
	if r.Name != "eval: BEIR beir-empty" || r.BaseFingerprint != sess.Fingerprint() || r.TunedFingerprint != "" {
		t.Errorf("report %q, base %q, tuned %q", r.Name, r.BaseFingerprint, r.TunedFingerprint)
	}
	kinds := map[string]bool{}
	for _, row := range r.Rows {
		kinds[row.Retrieval+" "+row.Model] = true
		if row.Section != "beir beir-empty" {
			t.Errorf("row of section %q", row.Section)
		}
		if v, ok := row.Metrics["ndcg@10"]; !ok || v < 0 || v > 1 {
			t.Errorf("%s row: ndcg@10 = %v", row.Retrieval, row.Metrics["ndcg@10"])
		}
	}
	if !kinds["dense base"] || !kinds["bm25 -"] || !kinds["hybrid w0.3 base"] || kinds["dense tuned"] {
		t.Errorf("rows %v: want dense, bm25 and hybrid, base only", kinds)
	}
	// No train split: the default fusion's row is at the index's default weight.
	if def := fmt.Sprintf("hybrid default zscore w%.2f base", index.DefaultDenseWeight); !kinds[def] {
		t.Errorf("rows %v: want %q", kinds, def)
	}
	if len(r.Curves) != 2 || len(r.Curves[0].Recall) != 5 {
		t.Errorf("curves %+v: want dense base and bm25 up to k=5", r.Curves)
	}
	if !slices.ContainsFunc(r.Notes, func(n string) bool { return strings.Contains(n, "2 documents without text left out (ids 3, 5)") }) {
		t.Errorf("notes %q do not count the empty documents", r.Notes)
	}
}

// TestRunPassages: --passages adds best-passage rows, dense and fused, with the real encoder,
// and the notes count the passages.
func TestRunPassages(t *testing.T) {
	enc := testmodel.NewEncoder(t)
	p := PassageOptions{Window: 3, LongWords: 4, MinWords: 1}
	r, err := Run(context.Background(), enc, Inputs{BEIR: "testdata/beir-empty", Split: "test"},
		Options{Keyword: true, HybridWeight: 0.3, Fusions: []Norm{NormZScore}, FusionWeights: []float64{0.5}, Passages: &p})
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]bool{}
	for _, row := range r.Rows {
		kinds[row.Retrieval+" "+row.Model] = true
		if v, ok := row.Metrics["ndcg@10"]; !ok || v < 0 || v > 1 {
			t.Errorf("%s row: ndcg@10 = %v", row.Retrieval, row.Metrics["ndcg@10"])
		}
	}
	if !kinds["dense passages base"] || !kinds["fuse zscore w0.50 passages base"] {
		t.Errorf("rows %v: want the passage rows", kinds)
	}
	if !slices.ContainsFunc(r.Notes, func(n string) bool { return strings.Contains(n, "passages for") }) {
		t.Errorf("notes %q do not count the passages", r.Notes)
	}
}

// TestRunBEIRCalibratesOnTrain: a BEIR folder with a train split chooses the default
// fusion's dense weight on the train queries (index.PickFusion over
// index.CalibrationWeights) and reports the test split at that weight, saying so in the row
// name and the notes.
func TestRunBEIRCalibratesOnTrain(t *testing.T) {
	enc := testmodel.NewEncoder(t)
	dir := t.TempDir()
	for _, f := range []string{"corpus.jsonl", "queries.jsonl", filepath.Join("qrels", "test.tsv")} {
		b, err := os.ReadFile(filepath.Join("testdata", "beir-empty", f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, f)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	train := "query-id\tcorpus-id\tscore\n1\t1\t2\n3\t4\t2\n"
	if err := os.WriteFile(filepath.Join(dir, "qrels", "train.tsv"), []byte(train), 0o600); err != nil {
		t.Fatal(err)
	}
	r, err := Run(context.Background(), enc, Inputs{BEIR: dir, Split: "test"}, Options{Keyword: true, HybridWeight: 0.3})
	if err != nil {
		t.Fatal(err)
	}
	var def []string
	for _, row := range r.Rows {
		if strings.HasPrefix(row.Retrieval, "hybrid default") && row.Subset == "all" {
			def = append(def, row.Retrieval)
		}
	}
	if len(def) != 1 || !strings.HasSuffix(def[0], " (chosen on train)") {
		t.Fatalf("default fusion rows %q: want one chosen on train", def)
	}
	var w float64
	if _, err := fmt.Sscanf(def[0], "hybrid default zscore w%f", &w); err != nil || !slices.Contains(index.CalibrationWeights, w) {
		t.Fatalf("row %q: weight %v not one of %v (%v)", def[0], w, index.CalibrationWeights, err)
	}
	if !slices.ContainsFunc(r.Notes, func(n string) bool { return strings.Contains(n, "chosen on 2 train queries") }) {
		t.Errorf("notes %q do not say where the weight was chosen", r.Notes)
	}

	// A damaged train split: the test split still evaluates, at the default weight, and the
	// notes say why.
	if err := os.WriteFile(filepath.Join(dir, "qrels", "train.tsv"), []byte("query-id\tcorpus-id\tscore\n1\t1\tmany\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r, err = Run(context.Background(), enc, Inputs{BEIR: dir, Split: "test"}, Options{Keyword: true, HybridWeight: 0.3})
	if err != nil {
		t.Fatal(err)
	}
	def = def[:0]
	for _, row := range r.Rows {
		if strings.HasPrefix(row.Retrieval, "hybrid default") && row.Subset == "all" {
			def = append(def, row.Retrieval)
		}
	}
	if want := fmt.Sprintf("hybrid default zscore w%.2f", index.DefaultDenseWeight); len(def) != 1 || def[0] != want {
		t.Fatalf("default fusion rows %q with a damaged train split, want %q", def, want)
	}
	if !slices.ContainsFunc(r.Notes, func(n string) bool { return strings.Contains(n, "train split unreadable") }) {
		t.Errorf("notes %q do not say the train split was unreadable", r.Notes)
	}
}
