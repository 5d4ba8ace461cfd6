package gpuencoder

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/podsearch/podsearch/core/encoder"
	"github.com/podsearch/podsearch/gpu-encoder/standin"
	"github.com/podsearch/podsearch/gpu-encoder/wire"
)

// runeTokenizer is a stand-in tokenizer for tests of the "texts" path that are about input
// handling, not token values: one id per rune.
type runeTokenizer struct{}

func (runeTokenizer) Encode(text string) []int32 {
	var ids []int32
	for _, r := range strings.Fields(text) {
		ids = append(ids, int32(len(r)%100)+6)
	}
	return ids
}

func (runeTokenizer) VocabSize() int { return 106 }

func standinConfig() Config {
	return Config{Backends: []encoder.Embedder{&standin.Embedder{}}, Tokenizer: runeTokenizer{}}
}

func TestEmbedEncodings(t *testing.T) {
	_, url := startServer(t, standinConfig())
	seqs := [][]int32{{1987, 383, 72}, {5, 6, 7, 8, 9, 10}, {8001}}
	want := make([][]float32, len(seqs))
	for i, s := range seqs {
		want[i] = standin.Vector(s)
	}
	bodies := map[string][]byte{
		wire.ContentTypeJSON:   jsonTokens(t, seqs),
		wire.ContentTypeTokens: wire.EncodeTokens(nil, seqs),
	}
	for ctype, body := range bodies {
		for _, accept := range []string{"", wire.ContentTypeJSON, wire.ContentTypeF32, wire.ContentTypeF16, "*/*;q=0.1, " + wire.ContentTypeF16} {
			t.Run(ctype+" -> "+accept, func(t *testing.T) {
				r := post(t, url, ctype, body, map[string]string{"Accept": accept})
				model, got := decodeReply(t, r)
				if model != standin.Fingerprint || r.header.Get(wire.HeaderModel) != standin.Fingerprint {
					t.Fatalf("model %q, header %q", model, r.header.Get(wire.HeaderModel))
				}
				if len(got) != len(want) {
					t.Fatalf("%d vectors, want %d", len(got), len(want))
				}
				f16 := r.header.Get("Content-Type") == wire.ContentTypeF16
				if strings.Contains(accept, wire.ContentTypeF16) != f16 {
					t.Fatalf("Accept %q answered %q", accept, r.header.Get("Content-Type"))
				}
				for i := range want {
					if c := cosine(got[i], want[i]); c < 0.99999 {
						t.Errorf("vector %d: cosine %.7f", i, c)
					}
					if !f16 && !slices.Equal(got[i], want[i]) {
						t.Errorf("vector %d differs from the backend's", i)
					}
				}
			})
		}
	}
}

func TestBadInput(t *testing.T) {
	cfg := standinConfig()
	cfg.MaxRequestSeqs = 4
	cfg.MaxBodyBytes = 4096
	cfg.MaxTextBytes = 100
	_, url := startServer(t, cfg)
	binBadDType := wire.EncodeTokens(nil, [][]int32{{1, 2}})
	binBadDType[5] = 9
	cases := []struct {
		name, ctype string
		body        []byte
		hdr         map[string]string
		status      int
		msg         string
	}{
		{"empty body", "application/json", nil, nil, 400, "empty body"},
		{"empty object", "application/json", []byte(`{}`), nil, 400, "no input"},
		{"empty token list", "application/json", []byte(`{"token_ids": []}`), nil, 400, "no sequences"},
		{"empty sequence", "application/json", []byte(`{"token_ids": [[1],[]]}`), nil, 400, "sequence 1 is empty"},
		{"empty text", "application/json", []byte(`{"texts": ["a b", "  "]}`), nil, 400, "texts[1] is empty"},
		{"too many sequences", "application/json", jsonTokens(t, [][]int32{{1}, {2}, {3}, {4}, {5}}), nil, 413, "5 sequences in one request; the limit is 4"},
		{"too many texts", "application/json", []byte(`{"texts": ["a","b","c","d","e"]}`), nil, 413, "the limit is 4"},
		{"sequence too long", "application/json", jsonTokens(t, [][]int32{make([]int32, 129)}), nil, 413, "sequence 0 has 129 tokens; the limit is 128"},
		{"text too long", "application/json", []byte(`{"texts": ["` + strings.Repeat("x", 101) + `"]}`), nil, 413, "texts[0] is 101 bytes; the limit is 100"},
		{"body too large", "application/json", []byte(`{"texts": ["` + strings.Repeat("x ", 3000) + `"]}`), nil, 413, "request body exceeds the limit of 4096 bytes"},
		{"float token id", "application/json", []byte(`{"token_ids": [[1, 2.5]]}`), nil, 400, "wrong dtype: token_ids must be arrays of integers"},
		{"string token id", "application/json", []byte(`{"token_ids": [["a"]]}`), nil, 400, "wrong dtype: token_ids must be arrays of integers"},
		{"number as text", "application/json", []byte(`{"texts": [42]}`), nil, 400, "wrong dtype: texts must be an array of strings"},
		{"huge token id", "application/json", []byte(`{"token_ids": [[99999999999]]}`), nil, 400, "wrong dtype"},
		{"invalid JSON", "application/json", []byte(`{"token_ids": [[1,2]`), nil, 400, "invalid JSON"},
		{"trailing JSON", "application/json", []byte(`{"token_ids": [[1]]} {}`), nil, 400, "more than one value"},
		{"unknown field", "application/json", []byte(`{"text": ["hi"]}`), nil, 400, `unknown field "text"`},
		{"both inputs", "application/json", []byte(`{"texts": ["a"], "token_ids": [[1]]}`), nil, 400, "not both"},
		{"non-UTF-8 text", "application/json", []byte("{\"texts\": [\"caf\xe9\"]}"), nil, 400, "not valid UTF-8 (byte offset 15)"},
		{"lone surrogate escape", "application/json", []byte(`{"texts": ["ok", "bad \ud800 text"]}`), nil, 400, "texts[1] is not valid UTF-8"},
		{"token id above vocabulary", "application/json", jsonTokens(t, [][]int32{{1, 8002}}), nil, 400, "token_ids[0][1] = 8002 is outside the vocabulary 0..8001"},
		{"negative token id", "application/json", jsonTokens(t, [][]int32{{-1}}), nil, 400, "token_ids[0][0] = -1 is outside the vocabulary"},
		{"binary unknown id", wire.ContentTypeTokens, wire.EncodeTokens(nil, [][]int32{{9000}}), nil, 400, "outside the vocabulary"},
		{"binary wrong dtype", wire.ContentTypeTokens, binBadDType, nil, 400, "binary token dtype 9 is not supported"},
		{"binary truncated", wire.ContentTypeTokens, wire.EncodeTokens(nil, [][]int32{{1, 2}})[:17], nil, 400, "ids; its lengths announce"},
		{"binary empty", wire.ContentTypeTokens, nil, nil, 400, "shorter than its 12-byte header"},
		{"binary too many", wire.ContentTypeTokens, wire.EncodeTokens(nil, [][]int32{{1}, {2}, {3}, {4}, {5}}), nil, 413, "the limit is 4"},
		{"unsupported content type", "application/xml", []byte(`<x/>`), nil, 415, `this Content-Type is not supported`},
		{"unacceptable Accept", "application/json", jsonTokens(t, [][]int32{{1}}), map[string]string{"Accept": "text/html"}, 406, "names no type this service writes"},
		{"bad deadline header", "application/json", jsonTokens(t, [][]int32{{1}}), map[string]string{wire.HeaderDeadline: "soon"}, 400, "must be whole milliseconds"},
		{"expired deadline", "application/json", jsonTokens(t, [][]int32{{1}}), map[string]string{wire.HeaderDeadline: "0"}, 504, "deadline already expired"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := post(t, url, c.ctype, c.body, c.hdr)
			if r.status != c.status {
				t.Fatalf("status %d, want %d (%s)", r.status, c.status, r.body)
			}
			if msg := r.errorText(t); !strings.Contains(msg, c.msg) {
				t.Fatalf("message %q does not say %q", msg, c.msg)
			}
		})
	}
	t.Run("GET embed", func(t *testing.T) {
		r := get(t, url+wire.EmbedPath)
		if r.status != 405 || r.header.Get("Allow") != "POST" {
			t.Fatalf("status %d allow %q", r.status, r.header.Get("Allow"))
		}
	})
	t.Run("unknown route", func(t *testing.T) {
		if r := get(t, url+"/v2/nothing"); r.status != 404 {
			t.Fatalf("status %d", r.status)
		}
	})
}

func TestAuth(t *testing.T) {
	cfg := standinConfig()
	cfg.Token = "s3cret"
	_, url := startServer(t, cfg)
	body := jsonTokens(t, [][]int32{{1, 2}})
	for hdr, want := range map[string]int{"": 401, "Bearer nope": 401, "Basic s3cret": 401, "Bearer s3cret": 200,
		// RFC 7235: the scheme is case-insensitive, as on the edge.
		"bearer s3cret": 200, "BEARER s3cret": 200, "Bearers3cret": 401, "Bearer": 401} {
		r := post(t, url, wire.ContentTypeJSON, body, map[string]string{"Authorization": hdr})
		if r.status != want {
			t.Errorf("Authorization %q: status %d, want %d", hdr, r.status, want)
		}
		if want == 401 && !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Bearer") {
			t.Errorf("401 without a Bearer challenge")
		}
	}
	for _, p := range []string{"/healthz", "/readyz", "/metrics"} {
		if r := get(t, url+p); r.status != 200 {
			t.Errorf("%s: status %d without a token", p, r.status)
		}
	}
}

func TestHealthReadyMetrics(t *testing.T) {
	_, url := startServer(t, standinConfig())
	if r := get(t, url+"/healthz"); r.status != 200 {
		t.Fatalf("healthz %d", r.status)
	}
	r := get(t, url+"/readyz")
	var ready struct {
		Ready bool   `json:"ready"`
		Model string `json:"model"`
	}
	if err := json.Unmarshal(r.body, &ready); err != nil || !ready.Ready || ready.Model != standin.Fingerprint {
		t.Fatalf("readyz %d %s (%v)", r.status, r.body, err)
	}
	decodeReply(t, post(t, url, wire.ContentTypeJSON, jsonTokens(t, [][]int32{{1, 2, 3}, {4}}), nil))
	m := string(get(t, url+"/metrics").body)
	for _, want := range []string{
		"podsearch_encoder_queue_depth 0",
		"podsearch_encoder_batch_size_bucket",
		`podsearch_encoder_request_duration_seconds_bucket{code="200"`,
		`podsearch_encoder_requests_total{code="200"} 1`,
		"podsearch_encoder_tokens_total 4",
		"podsearch_encoder_sequences_total 2",
	} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}

// concurrent sends each body in its own goroutine and returns the replies in order.
func concurrent(t *testing.T, url string, bodies [][]byte, hdr map[string]string) []reply {
	out := make([]reply, len(bodies))
	var wg sync.WaitGroup
	for i, b := range bodies {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i] = post(t, url, wire.ContentTypeJSON, b, hdr)
		}()
	}
	wg.Wait()
	return out
}

func TestDynamicBatching(t *testing.T) {
	for _, c := range []struct {
		budget    int
		longFirst bool
		batches   int
	}{
		{640, false, 4},     // the holder, 20 shorts, 5 longs, 5 longs (the budget splits the longs)
		{640, true, 4},      // the holder, 5 longs, 20 shorts, 5 longs
		{1 << 20, false, 3}, // the holder, 20 shorts, 10 longs: MaxPadding keeps them apart
		{1 << 20, true, 3},  // the holder, 10 longs, 20 shorts
	} {
		t.Run(fmt.Sprintf("budget %d long first %v", c.budget, c.longFirst), func(t *testing.T) {
			testDynamicBatching(t, c.budget, c.longFirst, c.batches)
		})
	}
}

func testDynamicBatching(t *testing.T, budget int, longFirst bool, wantBatches int) {
	g := newGated()
	s, url := startServer(t, Config{Backends: []encoder.Embedder{g}, Batch: BatchConfig{MaxBatchSeqs: 64, MaxBatchTokens: budget}})
	// One request holds the only session while the others queue, one by one in a known
	// order: 20 short (5 tokens) and 10 long (120 tokens) single-sequence requests,
	// interleaved.
	held := make(chan []reply, 1)
	go func() { held <- concurrent(t, url, [][]byte{jsonTokens(t, [][]int32{{1}})}, nil) }()
	<-g.entered
	replies := make([]chan []reply, 30)
	for i := range 30 {
		long := i%3 == 2
		if longFirst {
			long = i%3 == 0
		}
		n := 5
		if long {
			n = 120
		}
		seq := make([]int32, n)
		seq[0] = int32(100 + i)
		replies[i] = make(chan []reply, 1)
		go func() { replies[i] <- concurrent(t, url, [][]byte{jsonTokens(t, [][]int32{seq})}, nil) }()
		waitFor(t, "the request queued", func() bool { return s.b.depth() == i+1 })
	}
	g.open()
	all := <-held
	for _, r := range replies {
		all = append(all, <-r...)
	}
	for i, r := range all {
		if r.status != 200 {
			t.Fatalf("request %d: %d %s", i, r.status, r.body)
		}
	}
	var padded, real, seqs int
	for _, b := range g.batches() {
		longest := slices.Max(b)
		if len(b) > 1 && len(b)*longest > budget {
			t.Errorf("batch %v breaks the %d-token budget", b, budget)
		}
		for _, l := range b {
			real += l
		}
		padded += len(b) * longest
		seqs += len(b)
	}
	if seqs != 31 {
		t.Fatalf("%d sequences reached the model, want 31", seqs)
	}
	// Length buckets keep short and long sequences apart: no padding at all here, where a
	// first-come batcher would pad the shorts to 120.
	if padded != real {
		t.Errorf("padded %d tokens for %d real ones; batches %v", padded, real, g.batches())
	}
	if n := len(g.batches()); n != wantBatches {
		t.Errorf("%d batches, want %d: %v", n, wantBatches, g.batches())
	}
}

func TestBatchSizeOne(t *testing.T) {
	g := newGated()
	g.open()
	_, url := startServer(t, Config{Backends: []encoder.Embedder{g, g}, Batch: BatchConfig{MaxBatchSeqs: 1}})
	var bodies [][]byte
	for i := range 16 {
		bodies = append(bodies, jsonTokens(t, [][]int32{{int32(i + 1)}, {int32(i + 2), 3}}))
	}
	for _, r := range concurrent(t, url, bodies, nil) {
		decodeReply(t, r)
	}
	for _, b := range g.batches() {
		if len(b) != 1 {
			t.Fatalf("batch of %d with MaxBatchSeqs 1", len(b))
		}
	}
	if n := len(g.batches()); n != 32 {
		t.Fatalf("%d batches, want 32", n)
	}
}

func TestQueueFullAnswers429(t *testing.T) {
	g := newGated()
	s, url := startServer(t, Config{Backends: []encoder.Embedder{g}, MaxRequestSeqs: 4, Batch: BatchConfig{MaxBatchSeqs: 1, MaxQueueSeqs: 8}})
	one := jsonTokens(t, [][]int32{{1}})
	held := make(chan []reply, 1)
	go func() { held <- concurrent(t, url, [][]byte{one}, nil) }()
	<-g.entered // the session is busy; the queue is empty
	queued := make(chan []reply, 1)
	go func() { queued <- concurrent(t, url, [][]byte{one, one, one, one, one, one, one, one}, nil) }()
	waitFor(t, "a full queue", func() bool { return s.b.depth() == 8 })
	r := post(t, url, wire.ContentTypeJSON, one, nil)
	if r.status != 429 {
		t.Fatalf("status %d, want 429: %s", r.status, r.body)
	}
	if ra, err := strconv.Atoi(r.header.Get("Retry-After")); err != nil || ra < 1 {
		t.Fatalf("Retry-After %q", r.header.Get("Retry-After"))
	}
	if msg := r.errorText(t); !strings.Contains(msg, "queue holds its limit of 8 sequences") {
		t.Fatalf("message %q", msg)
	}
	// A request of several sequences is refused whole when it does not fit.
	if r := post(t, url, wire.ContentTypeJSON, jsonTokens(t, [][]int32{{1}, {2}}), nil); r.status != 429 {
		t.Fatalf("status %d, want 429", r.status)
	}
	g.open()
	for _, r := range append(<-held, <-queued...) {
		decodeReply(t, r)
	}
	if s.b.depth() != 0 {
		t.Fatalf("queue depth %d after draining", s.b.depth())
	}
}

func TestExpiredDeadlineNeverReachesModel(t *testing.T) {
	g := newGated()
	s, url := startServer(t, Config{Backends: []encoder.Embedder{g}})
	held := make(chan []reply, 1)
	go func() { held <- concurrent(t, url, [][]byte{jsonTokens(t, [][]int32{{1}})}, nil) }()
	<-g.entered
	// 4242 and 4343 are ids only the doomed requests carry.
	r := post(t, url, wire.ContentTypeJSON, jsonTokens(t, [][]int32{{4242, 7}, {4242}}), map[string]string{wire.HeaderDeadline: "30"})
	if r.status != http.StatusGatewayTimeout || !strings.Contains(r.errorText(t), "deadline expired before the model ran") {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	// One that expires while queued behind the held batch but is still in the queue when the
	// model frees up, and one already expired on arrival.
	late := make(chan []reply, 1)
	go func() {
		late <- concurrent(t, url, [][]byte{jsonTokens(t, [][]int32{{4343}})}, map[string]string{wire.HeaderDeadline: "20"})
	}()
	waitFor(t, "the late request queued", func() bool { return s.b.depth() >= 1 })
	if r := post(t, url, wire.ContentTypeJSON, jsonTokens(t, [][]int32{{4343}}), map[string]string{wire.HeaderDeadline: "-5"}); r.status != 504 {
		t.Fatalf("status %d", r.status)
	}
	if r := (<-late)[0]; r.status != 504 {
		t.Fatalf("late request: status %d", r.status)
	}
	g.open()
	decodeReply(t, (<-held)[0])
	decodeReply(t, post(t, url, wire.ContentTypeJSON, jsonTokens(t, [][]int32{{9}}), nil))
	if n := g.Seen(4242) + g.Seen(4343); n != 0 {
		t.Fatalf("expired work reached the model %d times", n)
	}
	if s.b.depth() != 0 {
		t.Fatalf("queue depth %d", s.b.depth())
	}
	if !strings.Contains(string(get(t, url+"/metrics").body), "podsearch_encoder_expired_sequences_total 3") {
		t.Errorf("expired counter is not 3:\n%s", get(t, url+"/metrics").body)
	}
}

func TestGracefulShutdownFinishesInFlight(t *testing.T) {
	g := newGated()
	s, err := New(Config{Backends: []encoder.Embedder{g}, Batch: BatchConfig{MaxBatchSeqs: 2}})
	if err != nil {
		t.Fatal(err)
	}
	ln, url := listen(t)
	go func() { _ = s.Serve(ln) }()
	var bodies [][]byte
	for i := range 6 {
		bodies = append(bodies, jsonTokens(t, [][]int32{{int32(i + 1)}}))
	}
	held := make(chan []reply, 1)
	go func() { held <- concurrent(t, url, bodies[:1], nil) }()
	<-g.entered
	queued := make(chan []reply, 1)
	go func() { queued <- concurrent(t, url, bodies[1:], nil) }()
	waitFor(t, "5 queued", func() bool { return s.b.depth() == 5 })
	stopped := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		stopped <- s.Shutdown(ctx)
	}()
	waitFor(t, "not ready", func() bool { return !s.ready.Load() })
	select {
	case err := <-stopped:
		t.Fatalf("shutdown returned %v with requests in flight", err)
	case <-time.After(50 * time.Millisecond):
	}
	g.open()
	for i, r := range append(<-held, <-queued...) {
		if _, v := decodeReply(t, r); !slices.Equal(v[0], standin.Vector([]int32{int32(i + 1)})) {
			t.Fatalf("request %d: wrong vector", i)
		}
	}
	if err := <-stopped; err != nil {
		t.Fatal(err)
	}
	if _, err := httpClient.Post(url+wire.EmbedPath, wire.ContentTypeJSON, bytes.NewReader(bodies[0])); err == nil {
		t.Fatal("server still answers after shutdown")
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	for name, cfg := range map[string]Config{
		"no backends":      {},
		"nil backend":      {Backends: []encoder.Embedder{nil}},
		"mixed models":     {Backends: []encoder.Embedder{&standin.Embedder{}, &otherModel{}}},
		"request > queue ": {Backends: []encoder.Embedder{&standin.Embedder{}}, MaxRequestSeqs: 10, Batch: BatchConfig{MaxQueueSeqs: 5}},
		"in flight < body": {Backends: []encoder.Embedder{&standin.Embedder{}}, MaxBodyBytes: 1 << 20, MaxInflightBytes: 1 << 19},
	} {
		if _, err := New(cfg); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

type otherModel struct{ standin.Embedder }

func (*otherModel) Fingerprint() string { return "other" }

func TestNegotiate(t *testing.T) {
	for accept, want := range map[string]string{
		"":    wire.ContentTypeJSON,
		"*/*": wire.ContentTypeJSON,
		"application/json;q=0.5, " + wire.ContentTypeF32: wire.ContentTypeF32,
		wire.ContentTypeF16 + ";q=0.2, application/*":    wire.ContentTypeJSON,
		"text/html, " + wire.ContentTypeF16:              wire.ContentTypeF16,
		"text/html":                                      "",
	} {
		if got, _ := negotiate([]byte(accept)); got != want {
			t.Errorf("Accept %q: %q, want %q", accept, got, want)
		}
	}
}

func listen(t *testing.T) (net.Listener, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln, fmt.Sprintf("http://%s", ln.Addr())
}
