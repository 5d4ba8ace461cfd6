package faissbench

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sort"
	"testing"

	"github.com/podsearch/podsearch/core/vec"
	"github.com/podsearch/podsearch/internal/testenv"
)

// TestRunOnSIFTSample runs the script on 1,000 SIFT vectors and checks every configuration
// reports a row, and exact search recall 1. It skips where FAISS is not installed (fails under PODSEARCH_REQUIRE_FAISS=1).
func TestRunOnSIFTSample(t *testing.T) {
	base, d, err := vec.ReadFvecs(testenv.Shared(t, "data/ann/sift10k/siftsmall_base.fvecs"))
	if err != nil {
		t.Fatal(err)
	}
	queries, _, err := vec.ReadFvecs(testenv.Shared(t, "data/ann/sift10k/siftsmall_query.fvecs"))
	if err != nil {
		t.Fatal(err)
	}
	base, queries = base[:1000*d], queries[:20*d]
	gt := make([][]int32, 20)
	for qi := range gt {
		q := vec.Row(queries, d, qi)
		ids := make([]int32, 1000)
		for i := range ids {
			ids[i] = int32(i)
		}
		sort.SliceStable(ids, func(a, b int) bool {
			return vec.L2Sq(q, vec.Row(base, d, int(ids[a]))) < vec.L2Sq(q, vec.Row(base, d, int(ids[b])))
		})
		gt[qi] = ids[:10]
	}
	dir := t.TempDir()
	write := func(name string, f func(*os.File) error) string {
		p := filepath.Join(dir, name)
		fh, err := os.Create(p)
		if err != nil {
			t.Fatal(err)
		}
		if err := f(fh); err != nil {
			t.Fatal(err)
		}
		fh.Close()
		return p
	}
	o := Options{
		Base:    write("b.fvecs", func(f *os.File) error { return vec.WriteFvecs(f, base, d) }),
		Queries: write("q.fvecs", func(f *os.File) error { return vec.WriteFvecs(f, queries, d) }),
		Truth:   write("g.ivecs", func(f *os.File) error { return vec.WriteIvecs(f, gt) }),
		Metric:  "l2", K: 10, NList: 8, M: 4, M4: 16, NProbes: []int{4}, Refine: 4, HNSWEf: []int{16},
		MinSeconds: 0.001,
	}
	rows, err := Run(context.Background(), o)
	if errors.Is(err, ErrUnavailable) {
		testenv.SkipOrFail(t, testenv.FAISS, "%v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 6 { // Flat, four IVF configurations at one nprobe, HNSW at one ef
		t.Fatalf("%d rows, want 6: %v", len(rows), rows)
	}
	if rows[0]["config"] != "Flat" || rows[0]["recall@10"] != 1.0 {
		t.Fatalf("exact search row %v, want recall 1", rows[0])
	}
	for _, r := range rows {
		if us, _ := r["us_per_query"].(float64); us <= 0 {
			t.Fatalf("row without a time: %v", r)
		}
	}
}
