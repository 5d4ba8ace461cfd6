package index

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"strconv"
	"testing"

	"github.com/podsearch/podsearch/internal/testenv"
)

// readVecs reads an .fvecs (float32) or .ivecs (int32) file: per row an int32 width, then
// width values.
func readVecs(t testing.TB, path string, ints bool) ([]float32, [][]int32, int) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	d := int(binary.LittleEndian.Uint32(b))
	row := 4 + 4*d
	n := len(b) / row
	var fl []float32
	var in [][]int32
	for i := 0; i < n; i++ {
		r := b[i*row+4 : (i+1)*row]
		if ints {
			v := make([]int32, d)
			for j := range v {
				v[j] = int32(binary.LittleEndian.Uint32(r[4*j:]))
			}
			in = append(in, v)
			continue
		}
		for j := 0; j < d; j++ {
			fl = append(fl, math.Float32frombits(binary.LittleEndian.Uint32(r[4*j:])))
		}
	}
	return fl, in, d
}

type siftData struct {
	base, queries []float32
	gt            [][]int32
	d             int
	docs          []Doc
}

func loadSIFT(t testing.TB) *siftData {
	dir := testenv.Shared(t, "data/ann/sift10k")
	s := &siftData{}
	s.base, _, s.d = readVecs(t, dir+"/siftsmall_base.fvecs", false)
	s.queries, _, _ = readVecs(t, dir+"/siftsmall_query.fvecs", false)
	_, s.gt, _ = readVecs(t, dir+"/siftsmall_groundtruth.ivecs", true)
	for i := 0; i < len(s.base)/s.d; i++ {
		s.docs = append(s.docs, Doc{ID: strconv.Itoa(i)})
	}
	return s
}

func recallAt(hits []Hit, gt []int32, k int) float64 {
	want := map[string]bool{}
	for _, g := range gt[:k] {
		want[strconv.Itoa(int(g))] = true
	}
	n := 0
	for i := 0; i < k && i < len(hits); i++ {
		if want[hits[i].ID] {
			n++
		}
	}
	return float64(n) / float64(k)
}

// TestSIFTRecall checks recall against SIFT10K's exact ground truth: IVF-PQ (4-bit
// fast-scan) with int8 re-ranking must find most true neighbours; PQ alone cannot reach that.
func TestSIFTRecall(t *testing.T) {
	s := loadSIFT(t)
	m, err := Train(s.base, s.d, Config{Metric: L2, NList: 32, Bits: 4, M: 32, Rerank: RerankSQ8, Iters: 5, Seed: 1, TrainSize: 3000})
	if err != nil {
		t.Fatal(err)
	}
	seg, err := BuildSegment(m, s.docs, s.base)
	if err != nil {
		t.Fatal(err)
	}
	sr, err := NewSearcher([]View{{Seg: seg}})
	if err != nil {
		t.Fatal(err)
	}
	nq := len(s.queries) / s.d
	for _, rf := range []int{1, 4} {
		var r1, r10 float64
		for qi := 0; qi < nq; qi++ {
			hits, err := sr.Search(context.Background(), s.queries[qi*s.d:(qi+1)*s.d], SearchOptions{K: 10, NProbe: 8, RerankFactor: rf})
			if err != nil {
				t.Fatal(err)
			}
			r1 += recallAt(hits, s.gt[qi], 1) / float64(nq)
			r10 += recallAt(hits, s.gt[qi], 10) / float64(nq)
		}
		t.Logf("%s nprobe 8 rerank x%d: R@1 %.3f R@10 %.3f", m, rf, r1, r10)
		if rf == 4 && (r1 < 0.9 || r10 < 0.85) {
			t.Fatalf("re-ranked recall R@1 %.3f R@10 %.3f is far below what this configuration reaches (about 0.97 / 0.95)", r1, r10)
		}
	}
}

// BenchmarkSearchSIFT times one query at a time on SIFT10K (IVF256, 4-bit PQ, SQ8 re-rank).
func BenchmarkSearchSIFT(b *testing.B) {
	s := loadSIFT(b)
	m, err := Train(s.base, s.d, Config{Metric: L2, Bits: 4, Rerank: RerankSQ8, Seed: 1})
	if err != nil {
		b.Fatal(err)
	}
	seg, err := BuildSegment(m, s.docs, s.base)
	if err != nil {
		b.Fatal(err)
	}
	sr, err := NewSearcher([]View{{Seg: seg}})
	if err != nil {
		b.Fatal(err)
	}
	nq := len(s.queries) / s.d
	for _, np := range []int{1, 8, 32} {
		b.Run(fmt.Sprintf("nprobe%d", np), func(b *testing.B) {
			i := 0
			for b.Loop() {
				q := s.queries[(i%nq)*s.d : (i%nq+1)*s.d]
				if _, err := sr.Search(context.Background(), q, SearchOptions{K: 10, NProbe: np}); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}
