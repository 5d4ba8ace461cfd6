package node

import (
	"context"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/podsearch/podsearch/core/encoder"
	"github.com/podsearch/podsearch/core/index"
	"github.com/podsearch/podsearch/core/ingest"
	"github.com/podsearch/podsearch/edge"
)

// demoIndex writes a one-shard index of the first n episodes of the bundled demo corpus,
// with random unit vectors (the node under test is keyword-only: no model needed).
func demoIndex(t *testing.T, n int) (string, []ingest.Episode) {
	t.Helper()
	eps, err := ingest.DemoCorpus()
	if err != nil {
		t.Fatal(err)
	}
	eps = eps[:n]
	rng := rand.New(rand.NewPCG(1, 2))
	docs := make([]index.Doc, n)
	flat := make([]float32, 0, n*encoder.Dim)
	for i, e := range eps {
		docs[i], _ = index.DocOf(e)
		v := make([]float32, encoder.Dim)
		var norm float64
		for j := range v {
			v[j] = float32(rng.NormFloat64())
			norm += float64(v[j]) * float64(v[j])
		}
		for j := range v {
			v[j] /= float32(math.Sqrt(norm))
		}
		flat = append(flat, v...)
	}
	model, err := index.Train(flat, encoder.Dim, index.Config{Seed: 1, Fingerprint: "node-test"})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := index.Create(dir, model, 1, docs, flat); err != nil {
		t.Fatal(err)
	}
	return dir, eps
}

// TestNodeServesItsMetricsAndSearches wires a keyword-only node over the wasm scan backend
// and checks, through real HTTP on loopback, that it searches and that its /metrics holds
// the edge's, the Go runtime's and the wasm guests' families.
func TestNodeServesItsMetricsAndSearches(t *testing.T) {
	dir, eps := demoIndex(t, 400)
	backend, err := ScanBackend(ScanWasm, 1)
	if err != nil {
		t.Fatal(err)
	}
	n, err := New(context.Background(), Options{
		Index: edge.IndexOptions{Dir: dir, Backend: backend, Descriptions: Descriptions(eps)},
		Edge:  edge.Config{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))},
	})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- n.Serve(ln) }()
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := n.Shutdown(ctx); err != nil {
			t.Error(err)
		}
		if err := <-served; err != nil {
			t.Error(err)
		}
	}()
	base := "http://" + ln.Addr().String()
	get := func(path string) string {
		t.Helper()
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %d %v: %.300s", path, resp.StatusCode, err, b)
		}
		return string(b)
	}
	word := strings.Fields(eps[0].Title)[0]
	if body := get("/v1/search?" + url.Values{"q": {word}}.Encode()); !strings.Contains(body, `"results"`) {
		t.Errorf("search answered %.300s", body)
	}
	metrics := get("/metrics")
	for _, fam := range []string{"podsearch_wasm_instances_created_total", "podsearch_wasm_calls_total", "podsearch_edge_", "go_goroutines"} {
		if !strings.Contains(metrics, fam) {
			t.Errorf("/metrics has no %s", fam)
		}
	}
}

func TestScanBackendNames(t *testing.T) {
	if b, err := ScanBackend(ScanNative, 1); b != nil || err != nil {
		t.Errorf("native: %v, %v", b, err)
	}
	if _, err := ScanBackend("gpu", 1); err == nil {
		t.Error("an unknown scan backend was accepted")
	}
}

func TestNewRejectsBadOptions(t *testing.T) {
	ctx := context.Background()
	if _, err := New(ctx, Options{}); err == nil {
		t.Error("a node without an index folder was built")
	}
	if _, err := New(ctx, Options{Index: edge.IndexOptions{Dir: t.TempDir()}, Tokenizer: "rust"}); err == nil {
		t.Error("an unknown tokenizer was accepted")
	}
}
