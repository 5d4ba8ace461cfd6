package index

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestParseConfig: factory strings read into the Config they name, and Config.String gives
// the canonical name back.
func TestParseConfig(t *testing.T) {
	for _, tc := range []struct {
		in, canon string
		want      Config
	}{
		{"IVF270,PQ128x4fs,SQ8", "IVF270,PQ128x4fs,SQ8", Config{NList: 270, M: 128, Bits: 4, Rerank: RerankSQ8}},
		{"IVF270,PQ128x4fs,TQ224,cosine", "", Config{NList: 270, M: 128, Bits: 4, Rerank: RerankTQ, RerankBytes: 224, Metric: Cosine}},
		{"IVF,PQ", "", Config{}},
		{"IVF64", "IVF64,PQ", Config{NList: 64}},
		{"PQ32x8,RFlat,l2", "IVF,PQ32x8,RFlat,l2", Config{M: 32, Bits: 8, Rerank: RerankFlat, Metric: L2}},
		{"PQ32x4", "IVF,PQ32x4fs", Config{M: 32, Bits: 4}},
		{"PQfs", "IVF,PQx4fs", Config{Bits: 4}},
		{"PQx8", "IVF,PQx8", Config{Bits: 8}},
		{"TQ", "IVF,PQ,TQ", Config{Rerank: RerankTQ}},
		{"SQ4, ip ", "IVF,PQ,SQ4,ip", Config{Rerank: RerankSQ4, Metric: InnerProduct}},
		{"IVF8,PQ16x4fs,noRerank,cosine", "", Config{NList: 8, M: 16, Bits: 4, Rerank: RerankNone, Metric: Cosine}},
		{"none,COSINE", "IVF,PQ,noRerank,cosine", Config{Rerank: RerankNone, Metric: Cosine}},
		{"cosine,RFlat,PQ16,IVF3", "IVF3,PQ16,RFlat,cosine", Config{NList: 3, M: 16, Rerank: RerankFlat, Metric: Cosine}},
	} {
		got, err := ParseConfig(tc.in)
		if err != nil {
			t.Fatalf("ParseConfig(%q): %v", tc.in, err)
		}
		if got != tc.want {
			t.Fatalf("ParseConfig(%q) = %+v, want %+v", tc.in, got, tc.want)
		}
		canon := tc.canon
		if canon == "" {
			canon = tc.in
		}
		if s := got.String(); s != canon {
			t.Fatalf("ParseConfig(%q).String() = %q, want %q", tc.in, s, canon)
		}
		if back, err := ParseConfig(got.String()); err != nil || back != got {
			t.Fatalf("round trip of %q: %+v, %v", tc.in, back, err)
		}
	}
}

// TestParseConfigErrors: malformed, out-of-range and repeated components are refused.
func TestParseConfigErrors(t *testing.T) {
	for _, in := range []string{
		"", " ", "IVF0", "IVF-3", "IVF+3", "IVFx", "ivf16", "PQ0", "PQ32x5", "PQ32x", "PQ32x8fs",
		"PQ32xfs", "PQ32fsfs", "PQa", "SQ6", "SQ", "TQ0", "TQ-1", "TQx", "Flat", "flat",
		"IVF8,IVF8", "SQ8,TQ64", "none,RFlat", "cosine,l2", "IVF8,,PQ", "IVF8,PQ,", "hnsw",
		"IVF99999999999999999999", "PQ16,PQ16", "default",
	} {
		if c, err := ParseConfig(in); err == nil {
			t.Fatalf("ParseConfig(%q) = %+v, want an error", in, c)
		}
	}
}

// TestModelConfigNames: a trained model's name is its Config's, which ParseConfig reads back
// into a Config that trains a model of the same name; the manifest records it.
func TestModelConfigNames(t *testing.T) {
	docs, vecs := loadEpisodes(t)
	for _, cfg := range []Config{
		{NList: 4, M: 16, Iters: 3, Seed: 1},
		{NList: 4, M: 8, Bits: 8, Rerank: RerankSQ4, Metric: L2, Iters: 3, Seed: 1},
		{NList: 4, Rerank: RerankTQ, RerankBytes: 24, Metric: InnerProduct, Iters: 3, Seed: 1},
		{NList: 4, Rerank: RerankFlat, Iters: 3, Seed: 1},
		{NList: 4, Rerank: RerankNone, Iters: 3, Seed: 1},
	} {
		m, err := Train(vecs, testDim, cfg)
		if err != nil {
			t.Fatal(err)
		}
		name := m.String()
		if name != m.Config().String() {
			t.Fatalf("Model.String %q != Config().String %q", name, m.Config().String())
		}
		parsed, err := ParseConfig(name)
		if err != nil {
			t.Fatalf("ParseConfig(%q): %v", name, err)
		}
		parsed.Iters, parsed.Seed = 3, 1
		m2, err := Train(vecs, testDim, parsed)
		if err != nil {
			t.Fatal(err)
		}
		if m2.String() != name || m2.ID() != m.ID() {
			t.Fatalf("%q trained again is %q (id %s vs %s)", name, m2.String(), m2.ID(), m.ID())
		}
		dir := t.TempDir()
		if err := Create(dir, m, 1, docs, vecs); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(filepath.Join(dir, ManifestName))
		if err != nil {
			t.Fatal(err)
		}
		var man struct{ Model, Config string }
		if err := json.Unmarshal(b, &man); err != nil || man.Config != name || man.Model != name {
			t.Fatalf("manifest model %q config %q, want %q (%v)", man.Model, man.Config, name, err)
		}
	}
}

// TestOpenWithoutConfigField: an index written before the manifest's config field opens and
// searches as before.
func TestOpenWithoutConfigField(t *testing.T) {
	docs, vecs := loadEpisodes(t)
	m := trainTestModel(t, vecs)
	dir := t.TempDir()
	if err := Create(dir, m, 2, docs, vecs); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, ManifestName)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, l := range strings.Split(string(b), "\n") {
		if !strings.Contains(l, `"config":`) {
			lines = append(lines, l)
		}
	}
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")), 0o644); err != nil {
		t.Fatal(err)
	}
	ix, err := Open(dir, "", OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer ix.Close()
	if ix.Len() != len(docs) || ix.Config() != m.String() {
		t.Fatalf("old manifest: %d episodes, config %q", ix.Len(), ix.Config())
	}
}

// FuzzParseConfig: ParseConfig never panics, and whatever it accepts names itself
// canonically: the canonical name parses back to the same Config and the same name.
func FuzzParseConfig(f *testing.F) {
	for _, s := range []string{"IVF270,PQ128x4fs,SQ8", "IVF,PQ", "PQ32x8,RFlat,l2", "TQ224,cosine", "none", "PQfs", "IVF0", "SQ8,SQ8"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := ParseConfig(s)
		if err != nil {
			return
		}
		name := c.String()
		back, err := ParseConfig(name)
		if err != nil {
			t.Fatalf("ParseConfig(%q) = %+v, whose name %q does not parse: %v", s, c, name, err)
		}
		if back != c || back.String() != name {
			t.Fatalf("ParseConfig(%q) = %+v named %q, read back as %+v named %q", s, c, name, back, back.String())
		}
	})
}

// TestRerankOf: the re-rank flags of `podsearch index` map to re-rank kinds as documented.
func TestRerankOf(t *testing.T) {
	for _, tc := range []struct {
		bits, bytes int
		kind        Rerank
		n           int
	}{
		{8, 0, RerankSQ8, 0}, {4, 0, RerankSQ4, 0}, {32, 0, RerankFlat, 0}, {-1, 0, RerankNone, 0}, {0, 0, RerankDefault, 0},
		{8, -1, RerankTQ, 0}, {-1, 224, RerankTQ, 224},
	} {
		kind, n, err := RerankOf(tc.bits, tc.bytes)
		if err != nil || kind != tc.kind || n != tc.n {
			t.Fatalf("RerankOf(%d, %d) = %v, %d, %v", tc.bits, tc.bytes, kind, n, err)
		}
	}
	for _, bits := range []int{1, 2, 6, 16, 64, -2} {
		if _, _, err := RerankOf(bits, -1); err == nil {
			t.Fatalf("RerankOf(%d) accepted", bits)
		}
	}
}
