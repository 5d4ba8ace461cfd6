package wasmscan_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/podsearch/podsearch/core/pq"
	"github.com/podsearch/podsearch/core/vec"
	"github.com/podsearch/podsearch/internal/scanbench"
	"github.com/podsearch/podsearch/internal/testenv"
	wasmscan "github.com/podsearch/podsearch/wasm/scan"
	"github.com/podsearch/podsearch/wasm/scanref"
)

// The pipeline of internal/scanbench over the C guest's Shard, against the native one.

func TestScanParitySIFT(t *testing.T) {
	s := wasmscan.LoadSIFT(t)
	ctx := context.Background()
	var sc scanref.Scanner
	for _, tc := range []struct {
		name string
		pq   *pq.Quantizer
		data wasmscan.Data
	}{{"8-bit", s.PQ8, s.Data8}, {"4-bit", s.PQ4, s.Data4}} {
		sh := wasmscan.NewShardT(t, tc.data, 2)
		for _, metric := range []scanbench.Metric{scanbench.InnerProduct, scanbench.L2} {
			for qi := 0; qi < 6; qi++ {
				tab := scanbench.Prepare(tc.pq, s.SQ, metric, s.Query(qi))
				what := fmt.Sprintf("%s metric %d query %d", tc.name, metric, qi)
				for _, k := range []int{1, 10, 100} {
					var got, want []wasmscan.Result
					var err error
					if tc.data.Bits == 8 {
						got, err = sh.Scan8(ctx, tab.LUT, k)
						if err == nil {
							want, err = sc.Scan8(tc.data.Codes, tc.data.N, tc.data.M, tab.LUT, k, 0)
						}
					} else {
						got, err = sh.FastScan4(ctx, tab.QLUT, k)
						if err == nil {
							want, err = sc.FastScan4(tc.data.Codes, tc.data.N, tc.data.M, tab.QLUT, k, 0)
						}
					}
					if err != nil {
						t.Fatal(err)
					}
					if len(got) != k {
						t.Fatalf("%s: %d results for k=%d", what, len(got), k)
					}
					wasmscan.EqualResults(t, fmt.Sprintf("%s k=%d scan", what, k), got, want)
				}
				got, err := scanbench.Search(ctx, sh, &tc.data, tab, 10, 200)
				if err != nil {
					t.Fatal(err)
				}
				want, err := scanbench.NativeSearch(&sc, &tc.data, tab, 10, 200)
				if err != nil {
					t.Fatal(err)
				}
				wasmscan.EqualResults(t, what+" search", got, want)
			}
		}
	}
}

// TestSearchRecallSIFT checks the pipeline finds the true neighbours (ground truth of the
// data set), so parity is not parity of garbage.
func TestSearchRecallSIFT(t *testing.T) {
	s := wasmscan.LoadSIFT(t)
	gt, err := vec.ReadIvecs(testenv.Shared(t, "data/ann/sift10k/siftsmall_groundtruth.ivecs"))
	if err != nil {
		t.Fatal(err)
	}
	sh := wasmscan.NewShardT(t, s.Data4, 1)
	hits, total := 0, 0
	for qi := 0; qi < 50; qi++ {
		res, err := scanbench.Search(context.Background(), sh, &s.Data4, scanbench.Prepare(s.PQ4, s.SQ, scanbench.L2, s.Query(qi)), 10, 400)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range res {
			if slices.Contains(gt[qi][:10], int32(r.ID)) {
				hits++
			}
		}
		total += 10
	}
	if recall := float64(hits) / float64(total); recall < 0.9 {
		t.Fatalf("recall@10 %.3f on SIFT10K, want >= 0.9", recall)
	}
}

// TestConcurrentQueries: queries on several instances of one shard at once answer as the
// native pipeline.
func TestConcurrentQueries(t *testing.T) {
	s := wasmscan.LoadSIFT(t)
	sh := wasmscan.NewShardT(t, s.Data4, 3)
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			var sc scanref.Scanner
			for qi := w; qi < 40; qi += 4 {
				tab := scanbench.Prepare(s.PQ4, s.SQ, scanbench.InnerProduct, s.Query(qi))
				got, err := scanbench.Search(context.Background(), sh, &s.Data4, tab, 10, 100)
				if err != nil {
					t.Error(err)
					return
				}
				want, err := scanbench.NativeSearch(&sc, &s.Data4, tab, 10, 100)
				if err != nil {
					t.Error(err)
					return
				}
				if !slices.Equal(got, want) {
					t.Errorf("query %d: concurrent wasm search differs from native", qi)
				}
			}
		}(w)
	}
	wg.Wait()
}

// Benchmarks of one query's scan over the SIFT10K test shards: native Go and the C guest.
// `podsearch bench wasm` runs the full comparison (Go in wasm included).

func benchScan(b *testing.B, bits int, guest bool) {
	s := wasmscan.LoadSIFT(b)
	data, q := s.Data8, s.PQ8
	if bits == 4 {
		data, q = s.Data4, s.PQ4
	}
	tab := scanbench.Prepare(q, nil, scanbench.L2, s.Query(0))
	plain := data
	plain.SQ, plain.SQCodes = nil, nil
	var sh *wasmscan.Shard
	if guest {
		sh = wasmscan.NewShardT(b, plain, 1)
	}
	var sc scanref.Scanner
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		var err error
		if guest {
			_, err = scanbench.Search(ctx, sh, &plain, tab, 100, 100)
		} else {
			_, err = scanbench.NativeSearch(&sc, &plain, tab, 100, 100)
		}
		if err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(data.N)*float64(b.N)/b.Elapsed().Seconds()/1e6, "Mcodes/s")
}

// Sub-benchmarks are named engine=native / engine=wasm so that benchstat puts the two side
// by side with their ratio: `make benchstat` (docs/benchmarks.md).

func BenchmarkScan8(b *testing.B) {
	b.Run("engine=native", func(b *testing.B) { benchScan(b, 8, false) })
	b.Run("engine=wasm", func(b *testing.B) { benchScan(b, 8, true) })
}

func BenchmarkFastScan4(b *testing.B) {
	b.Run("engine=native", func(b *testing.B) { benchScan(b, 4, false) })
	b.Run("engine=wasm", func(b *testing.B) { benchScan(b, 4, true) })
}
