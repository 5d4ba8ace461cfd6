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

	"github.com/prometheus/client_golang/prometheus"

	"github.com/podsearch/podsearch/core/encoder"
	"github.com/podsearch/podsearch/core/index"
	"github.com/podsearch/podsearch/core/ingest"
	"github.com/podsearch/podsearch/core/ingest/demo"
	"github.com/podsearch/podsearch/edge"
	gpuencoder "github.com/podsearch/podsearch/gpu-encoder"
	"github.com/podsearch/podsearch/gpu-encoder/standin"
	"github.com/podsearch/podsearch/internal/testmodel"
)

// demoIndex writes a one-shard index of the first n episodes of the bundled demo corpus,
// with random unit vectors under the given model fingerprint (no model needed).
func demoIndex(t *testing.T, n int, fingerprint string) (string, []ingest.Episode) {
	t.Helper()
	eps, err := demo.Corpus()
	if err != nil {
		t.Fatal(err)
	}
	eps = eps[:n]
	rng := rand.New(rand.NewPCG(1, 2))
	docs := make([]index.Doc, n)
	flat := make([]float32, 0, n*encoder.Dim)
	for i, e := range eps {
		docs[i], _ = ingest.IndexDoc(e)
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
	model, err := index.Train(flat, encoder.Dim, index.Config{Seed: 1, Fingerprint: fingerprint})
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
	dir, eps := demoIndex(t, 400, "node-test")
	backend, err := ScanBackend(ScanWasm, 1)
	if err != nil {
		t.Fatal(err)
	}
	n, err := New(context.Background(), Options{
		Index: edge.IndexOptions{Dir: dir, Backend: backend, Descriptions: Descriptions(eps)},
		Edge:  edge.Config{Logger: quiet()},
	})
	if err != nil {
		t.Fatal(err)
	}
	get := serve(t, n)
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

// serve serves n on a loopback port until the test ends and returns a GET on it that
// fails the test unless the answer is 200.
func serve(t *testing.T, n *Node) func(path string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- n.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := n.Shutdown(ctx); err != nil {
			t.Error(err)
		}
		if err := <-served; err != nil {
			t.Error(err)
		}
	})
	base := "http://" + ln.Addr().String()
	return func(path string) string {
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
}

// TestNodeWithEncoders wires a node as serve-edge does by default (wasm tokenizer reloaded
// with the shards, in-process cache with an empty secret, encoder pool) in front of an
// encoder service running the stand-in model, and searches it densely through loopback.
func TestNodeWithEncoders(t *testing.T) {
	uni := testmodel.Tokenizer(t)
	enc, err := gpuencoder.New(gpuencoder.Config{Backends: []encoder.Embedder{&standin.Embedder{}}, Tokenizer: uni,
		Registry: prometheus.NewRegistry(), Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	eln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = enc.Serve(eln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = enc.Shutdown(ctx)
	})
	dir, eps := demoIndex(t, 300, standin.Fingerprint)
	n, err := New(context.Background(), Options{
		Index:     edge.IndexOptions{Dir: dir},
		Edge:      edge.Config{AdminToken: "admin", Logger: quiet()},
		Encoders:  []string{eln.Addr().String()},
		Tokenizer: TokenizerWasm, TokenizerInstances: 1,
		CacheSecret: []byte(""), // what serve-edge passes without PODSEARCH_CACHE_SECRET
	})
	if err != nil {
		t.Fatal(err)
	}
	get := serve(t, n)
	q := url.Values{"q": {strings.ToLower(eps[0].Title)}, "mode": {"dense"}}.Encode()
	if body := get("/v1/search?" + q); !strings.Contains(body, `"mode":"dense"`) || !strings.Contains(body, `"results":[{`) {
		t.Errorf("dense search answered %.300s", body)
	}
	if _, _, err := n.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	get("/v1/search?" + q)
	metrics := get("/metrics")
	for _, fam := range []string{`podsearch_wasm_calls_total{module="tokenizer"}`, "podsearch_query_cache_", "podsearch_edge_"} {
		if !strings.Contains(metrics, fam) {
			t.Errorf("/metrics has no %s", fam)
		}
	}
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

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
