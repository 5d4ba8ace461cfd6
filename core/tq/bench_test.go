package tq

import (
	"fmt"
	"path/filepath"
	"sort"
	"testing"

	"github.com/podsearch/podsearch/core/assets"
	"github.com/podsearch/podsearch/core/vec"
	"github.com/podsearch/podsearch/internal/testenv"
)

// demoVectors reads the demo index's embeddings (`podsearch ingest --demo` then
// `podsearch index`), skipping when there are none (as in CI; failing under PODSEARCH_REQUIRE_DEMO=1).
func demoVectors(tb testing.TB) ([]float32, int) {
	tb.Helper()
	paths, _ := filepath.Glob(filepath.Join(assets.Home(), "demo", "*", "index", "vectors.fvecs"))
	if len(paths) == 0 {
		testenv.SkipOrFail(tb, testenv.Demo, "no demo index vectors (run `podsearch ingest --demo` and `podsearch index`)")
	}
	sort.Strings(paths)
	data, d, err := vec.ReadFvecs(paths[0])
	if err != nil {
		tb.Fatal(err)
	}
	return data, d
}

// topIDs returns the k ids of ids with the smallest scores (ties keep the order of ids).
func topIDs(ids []int, score []float32, k int) []int {
	idx := make([]int, len(ids))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return score[idx[a]] < score[idx[b]] })
	out := make([]int, min(k, len(ids)))
	for i := range out {
		out[i] = ids[idx[i]]
	}
	return out
}

func overlap(a, b []int) int {
	h := 0
	for _, x := range a {
		for _, y := range b {
			if x == y {
				h++
			}
		}
	}
	return h
}

// BenchmarkDemoRecall measures the codec's recall@10 against exact cosine search on the demo
// embeddings, bench protocol (the last 200 vectors query the rest): "rerank" re-ranks the
// exact top 100 with Distance (the ceiling of any re-ranking), "scan" ranks every base vector
// by Distance (the ceiling any first stage can reach).
//
//	go test -run '^$' -bench DemoRecall -benchtime 1x ./core/tq
func BenchmarkDemoRecall(b *testing.B) {
	data, d := demoVectors(b)
	const nq = 200
	n := len(data)/d - nq
	base, queries := data[:n*d], data[n*d:]
	all := make([]int, n)
	for i := range all {
		all[i] = i
	}
	exact := make([][]int, nq) // the exact top 100 per query
	vec.ParallelRows(nq, func(qi int) {
		s := make([]float32, n)
		for i := range s {
			s[i] = -vec.Dot(vec.Row(queries, d, qi), vec.Row(base, d, i))
		}
		exact[qi] = topIDs(all, s, 100)
	})
	for _, budget := range []int{192, 224, 256, 277} {
		b.Run(fmt.Sprintf("bytes=%d", budget), func(b *testing.B) {
			for range b.N {
				q, err := Train(base, d, budget)
				if err != nil {
					b.Fatal(err)
				}
				codes := q.EncodeAll(base)
				cs := q.CodeSize()
				rerank := make([]int, nq)
				scan := make([]int, nq)
				vec.ParallelRows(nq, func(qi int) {
					p := q.PrepareIP(vec.Row(queries, d, qi))
					s := make([]float32, n)
					for i := range s {
						s[i] = p.Distance(codes[i*cs : (i+1)*cs])
					}
					scan[qi] = overlap(topIDs(all, s, 10), exact[qi][:10])
					c := make([]float32, 100)
					for i, id := range exact[qi] {
						c[i] = s[id]
					}
					rerank[qi] = overlap(topIDs(exact[qi], c, 10), exact[qi][:10])
				})
				var hr, hs int
				for qi := range rerank {
					hr += rerank[qi]
					hs += scan[qi]
				}
				b.ReportMetric(float64(cs), "bytes/vector")
				b.ReportMetric(float64(hr)/(10*nq), "rerank-R@10")
				b.ReportMetric(float64(hs)/(10*nq), "scan-R@10")
			}
		})
	}
}

// costSetup trains a 277-byte quantizer on the demo embeddings, or on synthetic 512-d rows
// when they are absent, and returns it with encoded rows and a query.
func costSetup(b *testing.B) (*Quantizer, []byte, []float32) {
	b.Helper()
	paths, _ := filepath.Glob(filepath.Join(assets.Home(), "demo", "*", "index", "vectors.fvecs"))
	var data []float32
	d := 512
	if len(paths) > 0 {
		data, d = demoVectors(b)
	} else {
		data = synthetic(8, 4000, d)
	}
	q, err := Train(data, d, 277)
	if err != nil {
		b.Fatal(err)
	}
	return q, q.EncodeAll(data[:1024*d]), vec.Row(data, d, len(data)/d-1)
}

// BenchmarkPrepareIP is the per-query cost: rotating the query, one coefficient per lane.
func BenchmarkPrepareIP(b *testing.B) {
	q, _, query := costSetup(b)
	b.ResetTimer()
	for range b.N {
		q.PrepareIP(query)
	}
}

// BenchmarkDistanceIP is the per-candidate cost of an inner-product distance (ns/op).
func BenchmarkDistanceIP(b *testing.B) { benchDistance(b, (*Quantizer).PrepareIP) }

// BenchmarkDistanceL2 is the per-candidate cost of a squared-L2 distance (ns/op).
func BenchmarkDistanceL2(b *testing.B) { benchDistance(b, (*Quantizer).PrepareL2) }

// benchDistance times Distance of a query made by prepare over the encoded set in turn.
func benchDistance(b *testing.B, prepare func(*Quantizer, []float32) *Query) {
	q, codes, query := costSetup(b)
	p := prepare(q, query)
	cs := q.CodeSize()
	n := len(codes) / cs
	b.ResetTimer()
	var s float32
	for i := range b.N {
		k := i % n
		s += p.Distance(codes[k*cs : (k+1)*cs])
	}
	_ = s
}
