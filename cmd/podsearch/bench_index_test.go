package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/podsearch/podsearch/core/index"
	"github.com/podsearch/podsearch/core/indexbuild"
	"github.com/podsearch/podsearch/core/vec"

	"github.com/podsearch/podsearch/internal/testenv"
)

func TestParseConfigs(t *testing.T) {
	cfgs, err := parseConfigs("pq4+sq8,pq8x16,pq4x32+sq4,pq4+flat,pq4x64+tq256")
	if err != nil {
		t.Fatal(err)
	}
	if len(cfgs) != 5 || cfgs[4].RerankBytes != 256 || cfgs[4].Rerank != index.RerankTQ || cfgs[4].M != 64 || cfgs[0].Bits != 4 || cfgs[0].Rerank != index.RerankSQ8 || cfgs[1].M != 16 || cfgs[1].Bits != 8 || cfgs[1].Rerank != index.RerankNone || cfgs[2].Rerank != index.RerankSQ4 || cfgs[3].Rerank != index.RerankFlat {
		t.Fatalf("parsed %+v", cfgs)
	}
	sp, err := parseConfigs("default,pq4+tq224+spill4+budget0.5+hard0.3+probe2,pq4+sq8+soar")
	if err != nil {
		t.Fatal(err)
	}
	if !sp[0].Default || !sp[0].Guided || sp[0].Spill.MaxLists != indexbuild.DefaultSpillLists || sp[0].Spill.Budget != indexbuild.DefaultSpillBudget ||
		!sp[1].Guided || sp[1].Spill.MaxLists != 4 || sp[1].Spill.Budget != 0.5 || sp[1].Spill.Hardest != 0.3 || sp[1].Spill.QueryProbe != 2 || sp[1].RerankBytes != 224 ||
		sp[0].Config != (index.Config{Bits: 4, Rerank: index.RerankTQ}) ||
		sp[2].Guided || sp[2].Spill.SOAR != 1 || sp[2].Spill.MaxLists != 2 || sp[2].Rerank != index.RerankSQ8 {
		t.Fatalf("parsed %+v", sp)
	}
	// Factory strings, alone or among short forms, with benchmark-only parts.
	fc, err := parseConfigs("IVF64,PQ32x4fs,SQ8,pq8x16,PQ16x8,RFlat,l2,IVF,PQ,TQ128+spill4+soar,IVF,PQx4fs,none")
	if err != nil {
		t.Fatal(err)
	}
	want := []index.Config{{NList: 64, M: 32, Bits: 4, Rerank: index.RerankSQ8}, {M: 16, Bits: 8, Rerank: index.RerankNone},
		{M: 16, Bits: 8, Rerank: index.RerankFlat, Metric: index.L2}, {Rerank: index.RerankTQ, RerankBytes: 128}, {Bits: 4, Rerank: index.RerankNone}}
	if len(fc) != len(want) {
		t.Fatalf("parsed %d configurations: %+v", len(fc), fc)
	}
	for i, c := range fc {
		if c.Config != want[i] {
			t.Errorf("configuration %d: %+v, want %+v", i, c.Config, want[i])
		}
	}
	if fc[3].Spill.MaxLists != 4 || fc[3].Spill.SOAR != 1 || !fc[3].Guided || fc[0].Guided {
		t.Errorf("spilling: %+v", fc)
	}
	for _, bad := range []string{"IVF64,IVF,PQ,SQ8,TQ8", "IVF,PQ+sq8", "IVF,PQ,SQ8+spill1", "pq4fs", "pq4+SQ8", "sq8", "pqx", "pq4+q8", "pq4x0", "pq4+tq0", "pq4+tqx", "", "pq4+spill1", "pq4+budget0", "pq4+spill2+sq8", "pq4+hard2"} {
		if _, err := parseConfigs(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// TestBenchIndexSIFT runs the benchmark end to end on 2,000 SIFT10K vectors (ours only, one
// small configuration, ground truth computed exactly) and checks the JSON rows.
func TestBenchIndexSIFT(t *testing.T) {
	dir := testenv.Shared(t, "data/ann/sift10k")
	var out bytes.Buffer
	err := benchIndexTo(&out, []string{"--fvecs", dir + "/siftsmall_base.fvecs", "--queries", dir + "/siftsmall_query.fvecs",
		"--gt", dir + "/siftsmall_groundtruth.ivecs", "--limit", "2000", "--json", "--faiss=false", "--nlist", "16",
		"--configs", "pq4x16+sq8", "--nprobe", "4", "--min-seconds", "0"})
	if err != nil {
		t.Fatal(err)
	}
	var rows []benchRow
	sc := bufio.NewScanner(&out)
	for sc.Scan() {
		var r benchRow
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("bad line %q: %v", sc.Text(), err)
		}
		rows = append(rows, r)
	}
	if len(rows) != 2 {
		t.Fatalf("%d rows, want exact + one setting", len(rows))
	}
	if rows[0].Config != "Flat" || rows[0].RecallAt10 != 1 {
		t.Fatalf("exact row %+v: brute force must match the ground truth", rows[0])
	}
	r := rows[1]
	if r.Engine != "podsearch" || r.N != 2000 || r.D != 128 || r.NQ != 100 || r.BytesPerVector != 8+128+4 {
		t.Fatalf("row %+v", r)
	}
	if r.RecallAt10 < 0.8 {
		t.Fatalf("IVF16 nprobe 4 with re-ranking: recall@10 %.3f, far below the 0.95 it reaches", r.RecallAt10)
	}
	if err := benchIndexTo(&out, []string{"--fvecs", dir + "/siftsmall_base.fvecs"}); err == nil {
		t.Fatal("--fvecs without --queries accepted")
	}
}

// TestAugmentVectors: the scaled base keeps the real rows first, adds unit rows whose cosine
// to the nearest real row is near the real nearest-neighbour cosine, and is reproducible.
func TestAugmentVectors(t *testing.T) {
	const d, n0, n = 16, 200, 1000
	rng := rand.New(rand.NewPCG(1, 2))
	base := make([]float32, n0*d)
	for i := range base {
		base[i] = float32(rng.NormFloat64())
	}
	for i := 0; i < n0; i++ {
		vec.Normalize(vec.Row(base, d, i))
	}
	a, c, err := augmentVectors(base, d, n, scaleIsotropic, 0, 7)
	b, _, _ := augmentVectors(base, d, n, scaleIsotropic, 0, 7)
	if err != nil {
		t.Fatal(err)
	}
	if len(a) != n*d || !slices.Equal(a, b) || !slices.Equal(a[:n0*d], base) {
		t.Fatalf("augmented %d values (want %d), reproducible %v, real rows kept %v", len(a), n*d, slices.Equal(a, b), slices.Equal(a[:n0*d], base))
	}
	var sum float64
	for i := n0; i < n; i++ {
		x := vec.Row(a, d, i)
		if nrm := vec.Norm(x); math.Abs(float64(nrm)-1) > 1e-4 {
			t.Fatalf("row %d has norm %v", i, nrm)
		}
		best := float32(-2)
		for j := 0; j < n0; j++ {
			best = max(best, vec.Dot(x, vec.Row(base, d, j)))
		}
		sum += float64(best)
	}
	if mean := sum / float64(n-n0); mean < c-0.1 {
		t.Fatalf("synthetic rows lie at mean cosine %.3f from the real ones, the real nearest-neighbour median is %.3f", mean, c)
	}
	// A mixture lies between a real row and one of its nearest real rows, so it is at least
	// as close to a real row as real rows are to each other, and it is reproducible.
	m, _, err := augmentVectors(base, d, n, scaleMix, 0, 7)
	m2, _, _ := augmentVectors(base, d, n, scaleMix, 0, 7)
	if err != nil || !slices.Equal(m, m2) || !slices.Equal(m[:n0*d], base) {
		t.Fatalf("mix: err %v, reproducible %v, real rows kept %v", err, slices.Equal(m, m2), slices.Equal(m[:n0*d], base))
	}
	nb := nearestRows(base, d, scaleNeighbours)
	for i := n0; i < n; i++ {
		x := vec.Row(m, d, i)
		best := float32(-2)
		for j := 0; j < n0; j++ {
			best = max(best, vec.Dot(x, vec.Row(base, d, j)))
		}
		if float64(best) < c-1e-3 {
			t.Fatalf("mix row %d lies at cosine %.3f from every real row, below the real nearest-neighbour median %.3f", i, best, c)
		}
	}
	for i, row := range nb[:5] {
		if len(row) != scaleNeighbours || slices.Contains(row, int32(i)) {
			t.Fatalf("row %d: nearest rows %v", i, row)
		}
	}
	if _, _, err := augmentVectors(base, d, n, "gauss", 0, 7); !errors.Is(err, errUsage) {
		t.Fatalf("an unknown scale model gave %v", err)
	}
	if got := strideRows(base, d, 20); len(got) != 20*d || !slices.Equal(got[d:2*d], vec.Row(base, d, 10)) {
		t.Fatalf("strideRows(20 of %d) took the wrong rows", n0)
	}
	if got, _, _ := augmentVectors(base, d, 50, scaleIsotropic, 0, 7); len(got) != 50*d {
		t.Fatalf("shrinking to 50 rows gave %d values", len(got))
	}
}
