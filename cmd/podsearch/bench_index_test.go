package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"testing"

	"github.com/podsearch/podsearch/internal/testenv"
)

func TestParseConfigs(t *testing.T) {
	cfgs, err := parseConfigs("pq4+sq8,pq8x16,pq4x32+sq4,pq4+flat,pq4x64+tq256")
	if err != nil {
		t.Fatal(err)
	}
	if len(cfgs) != 5 || cfgs[4].RerankBytes != 256 || cfgs[4].M != 64 || cfgs[0].Bits != 4 || cfgs[0].RerankBits != 8 || cfgs[1].M != 16 || cfgs[1].RerankBits != -1 || cfgs[2].RerankBits != 4 || cfgs[3].RerankBits != 32 {
		t.Fatalf("parsed %+v", cfgs)
	}
	for _, bad := range []string{"sq8", "pqx", "pq4+q8", "pq4x0", "pq4+tq0", "pq4+tqx", ""} {
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
