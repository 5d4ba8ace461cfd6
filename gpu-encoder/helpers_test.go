package gpuencoder

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/podsearch/podsearch/core/vec"
	"github.com/podsearch/podsearch/gpu-encoder/standin"
	"github.com/podsearch/podsearch/gpu-encoder/wire"
)

// gated wraps the stand-in model so a test can hold batches at the model's door and see the
// lengths of every batch that went through.
type gated struct {
	*standin.Embedder
	gate    chan struct{} // closed = open
	mu      sync.Mutex
	lengths [][]int
	entered chan int // receives each batch size as it arrives, if non-nil
}

func newGated() *gated {
	return &gated{Embedder: &standin.Embedder{}, gate: make(chan struct{}), entered: make(chan int, 1024)}
}

func (g *gated) Embed(ctx context.Context, ids [][]int32) ([][]float32, error) {
	ls := make([]int, len(ids))
	for i, s := range ids {
		ls[i] = len(s)
	}
	g.mu.Lock()
	g.lengths = append(g.lengths, ls)
	g.mu.Unlock()
	g.entered <- len(ids)
	<-g.gate
	return g.Embedder.Embed(ctx, ids)
}

func (g *gated) open() { close(g.gate) }

func (g *gated) batches() [][]int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([][]int(nil), g.lengths...)
}

// startServer serves cfg on a loopback port and shuts it down when the test ends.
func startServer(t *testing.T, cfg Config) (*Server, string) {
	t.Helper()
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		// Connections the client dialed but never used count as busy for 5s in fasthttp's
		// shutdown; closing the client's idle ones first keeps tests quick.
		httpClient.CloseIdleConnections()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if err := <-served; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return s, "http://" + ln.Addr().String()
}

type reply struct {
	status int
	header http.Header
	body   []byte
}

// errorText returns the "error" field of a JSON error body.
func (r reply) errorText(t *testing.T) string {
	t.Helper()
	var e wire.JSONError
	if err := json.Unmarshal(r.body, &e); err != nil {
		t.Fatalf("error body %q is not JSON: %v", r.body, err)
	}
	return e.Error
}

var httpClient = &http.Client{Timeout: 20 * time.Second}

func post(t testing.TB, url, ctype string, body []byte, hdr map[string]string) reply {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url+wire.EmbedPath, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	return do(t, req)
}

func get(t testing.TB, url string) reply {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	return do(t, req)
}

// do sends req and reads the whole answer.
func do(t testing.TB, req *http.Request) reply {
	t.Helper()
	resp, err := httpClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return reply{resp.StatusCode, resp.Header, b}
}

func jsonTokens(t testing.TB, seqs [][]int32) []byte {
	t.Helper()
	b, err := json.Marshal(wire.JSONRequest{TokenIDs: seqs})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// decodeReply reads vectors from a JSON or binary embed answer.
func decodeReply(t testing.TB, r reply) (string, [][]float32) {
	t.Helper()
	if r.status != http.StatusOK {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	switch r.header.Get("Content-Type") {
	case wire.ContentTypeF32, wire.ContentTypeF16:
		model, vecs, err := wire.DecodeEmbeddings(r.body)
		if err != nil {
			t.Fatal(err)
		}
		return model, vecs
	default:
		var jr wire.JSONResponse
		if err := json.Unmarshal(r.body, &jr); err != nil {
			t.Fatalf("answer %q: %v", r.body[:min(len(r.body), 200)], err)
		}
		return jr.Model, jr.Embeddings
	}
}

func cosine(a, b []float32) float64 { return vec.Cosine(a, b) }

// waitFor polls cond every millisecond for up to 10s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}
