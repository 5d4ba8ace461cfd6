package gpuencoder

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/podsearch/podsearch/core/encoder"
	"github.com/podsearch/podsearch/gpu-encoder/wire"
)

// syncBuffer is a bytes.Buffer safe for a logger and a test to share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// rawRequest writes req on a fresh connection to addr (host:port) and reads one answer.
func rawRequest(t *testing.T, addr, req string) (*http.Response, string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// TestNullTokenRefused: encoding/json leaves a JSON null in an []int32 as 0, a real token;
// the service refuses it.
func TestNullTokenRefused(t *testing.T) {
	_, url := startServer(t, standinConfig())
	for _, body := range []string{
		`{"token_ids":[[null]]}`,
		`{"token_ids":[[5, null, 7]]}`,
		`{"token_ids":[null]}`,
		`{"token_ids":[[1e2]]}`,
		`{"token_ids":[[true]]}`,
		`{"token_ids":[[[1]]]}`,
		`{"token_ids":[["1,2"]]}`,
		`{"token_ids":[[2147483648]]}`,
	} {
		r := post(t, url, wire.ContentTypeJSON, []byte(body), nil)
		if r.status != 400 || !strings.Contains(r.errorText(t), "wrong dtype: token_ids must be arrays of integers") {
			t.Errorf("%s: status %d: %s", body, r.status, r.body)
		}
	}
	// What the decoder still takes: whitespace, negative zero and the full id range.
	decodeReply(t, post(t, url, wire.ContentTypeJSON, []byte(`{"token_ids":[[ 1 ,2,-0, 8001 ], [0]]}`), nil))
}

// TestErrorsNameNoGoTypes: JSON errors speak of the protocol's fields, never of Go types.
func TestErrorsNameNoGoTypes(t *testing.T) {
	_, url := startServer(t, standinConfig())
	for _, body := range []string{`[1, 2]`, `"hello"`, `42`, `{"token_ids": {"a": 1}}`, `{"texts": "a"}`,
		`{"texts": [["a"]]}`, `{"token_ids": [[1]], "texts": 5}`, `{"token_ids": [1, 2]}`, `{"texts": [1]`, `{"q":`} {
		r := post(t, url, wire.ContentTypeJSON, []byte(body), nil)
		msg := r.errorText(t)
		if r.status != 400 {
			t.Errorf("%s: status %d: %s", body, r.status, msg)
		}
		for _, bad := range []string{"wire.", "gpuencoder.", "jsonRequest", "JSONRequest", "Go ", "struct", "[]string", "int32", "tokenSeq"} {
			if strings.Contains(msg, bad) {
				t.Errorf("%s: message %q names a Go type (%q)", body, msg, bad)
			}
		}
	}
}

// TestErrorsEchoNoHeaders: neither the answers nor the logs of malformed or refused requests
// carry the Authorization header, other header values or the query text.
func TestErrorsEchoNoHeaders(t *testing.T) {
	var logs syncBuffer
	cfg := standinConfig()
	cfg.Token = "s3cret-token"
	cfg.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	_, url := startServer(t, cfg)
	addr := strings.TrimPrefix(url, "http://")
	const secret, query = "Bearer s3cret-token", "medieval-beekeeping"
	body := `{"texts": ["` + query + `"]}`
	reqs := map[string]string{
		"bad Content-Length": "POST /v1/embed?q=" + query + " HTTP/1.1\r\nHost: x\r\nAuthorization: " + secret +
			"\r\nContent-Length: abc\r\nContent-Type: application/json\r\n\r\n" + body,
		"bad method line": "P\x01ST /v1/embed?q=" + query + " HTTP/1.1\r\nHost: x\r\nAuthorization: " + secret + "\r\n\r\n",
		"bad header line": "POST /v1/embed HTTP/1.1\r\nHost: x\r\nAuthorization: " + secret + "\r\nX-" + query + "\r\n\r\n",
		"bad deadline": "POST /v1/embed HTTP/1.1\r\nHost: x\r\nAuthorization: " + secret + "\r\nX-Deadline-Ms: " + query +
			"\r\nContent-Type: application/json\r\nContent-Length: " + fmt.Sprint(len(body)) + "\r\n\r\n" + body,
		"bad Accept": "POST /v1/embed HTTP/1.1\r\nHost: x\r\nAuthorization: " + secret + "\r\nAccept: text/" + query +
			"\r\nContent-Type: application/json\r\nContent-Length: " + fmt.Sprint(len(body)) + "\r\n\r\n" + body,
		"bad Content-Type": "POST /v1/embed HTTP/1.1\r\nHost: x\r\nAuthorization: " + secret + "\r\nContent-Type: text/" + query +
			"\r\nContent-Length: " + fmt.Sprint(len(body)) + "\r\n\r\n" + body,
		"wrong token": "POST /v1/embed?q=" + query + " HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + query +
			"\r\nContent-Type: application/json\r\nContent-Length: " + fmt.Sprint(len(body)) + "\r\n\r\n" + body,
	}
	for name, req := range reqs {
		resp, answer := rawRequest(t, addr, req)
		if resp.StatusCode < 400 || resp.StatusCode >= 500 {
			t.Errorf("%s: status %d: %s", name, resp.StatusCode, answer)
		}
		if strings.Contains(answer, "s3cret") || strings.Contains(answer, query) {
			t.Errorf("%s: the answer echoes the request: %s", name, answer)
		}
	}
	if l := logs.String(); strings.Contains(l, "s3cret") || strings.Contains(l, query) {
		t.Errorf("the logs echo the request:\n%s", l)
	}
}

// TestLargeHeader431: request headers beyond the read buffer get 431, not 400.
func TestLargeHeader431(t *testing.T) {
	_, url := startServer(t, standinConfig())
	addr := strings.TrimPrefix(url, "http://")
	resp, answer := rawRequest(t, addr, "POST /v1/embed HTTP/1.1\r\nHost: x\r\nX-Big: "+strings.Repeat("a", 8<<10)+
		"\r\nContent-Length: 0\r\n\r\n")
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge || !strings.Contains(answer, "headers exceed the limit") {
		t.Fatalf("status %d: %s", resp.StatusCode, answer)
	}
	// A 4 KB header, over fasthttp's default buffer, is still read.
	b := jsonTokens(t, [][]int32{{1, 2}})
	resp, answer = rawRequest(t, addr, "POST /v1/embed HTTP/1.1\r\nHost: x\r\nX-Big: "+strings.Repeat("a", 5<<10)+
		"\r\nContent-Type: application/json\r\nContent-Length: "+fmt.Sprint(len(b))+"\r\n\r\n"+string(b))
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, answer)
	}
}

// countingTokenizer is runeTokenizer that counts the texts it tokenized, takes delay per
// text, and holds the text "block me" until release is closed.
type countingTokenizer struct {
	runeTokenizer
	delay   time.Duration
	release chan struct{}
	entered chan struct{}
	mu      sync.Mutex
	seen    map[string]int
}

func newCountingTokenizer(delay time.Duration) *countingTokenizer {
	return &countingTokenizer{delay: delay, release: make(chan struct{}), entered: make(chan struct{}, 16), seen: map[string]int{}}
}

func (c *countingTokenizer) Encode(text string) []int32 {
	c.mu.Lock()
	c.seen[text]++
	c.mu.Unlock()
	if text == "block me" {
		c.entered <- struct{}{}
		<-c.release
	}
	time.Sleep(c.delay)
	return c.runeTokenizer.Encode(text)
}

// count returns how many texts starting with prefix were tokenized.
func (c *countingTokenizer) count(prefix string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for t, k := range c.seen {
		if strings.HasPrefix(t, prefix) {
			n += k
		}
	}
	return n
}

func textsBody(t testing.TB, texts []string) []byte {
	t.Helper()
	b, err := json.Marshal(wire.JSONRequest{Texts: texts})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestRefusedFromHeadersAlone: a request too large for the body limit, or for the bytes
// still in flight, is answered from its headers, before its body is sent.
func TestRefusedFromHeadersAlone(t *testing.T) {
	cfg := standinConfig()
	cfg.MaxBodyBytes = 1 << 20
	cfg.MaxInflightBytes = 2 << 20
	s, url := startServer(t, cfg)
	addr := strings.TrimPrefix(url, "http://")
	head := func(n int) string {
		return fmt.Sprintf("POST /v1/embed HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", n)
	}
	// fasthttp reads up to 8 KB of a body before the handler runs; the rest is never sent.
	prefix := `{"texts": ["` + strings.Repeat("a", 8<<10)
	resp, answer := rawRequest(t, addr, head(100<<20)+prefix)
	if resp.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(answer, "exceeds the limit of 1048576 bytes") {
		t.Fatalf("status %d: %s", resp.StatusCode, answer)
	}
	// Two clients announce 1 MiB each and send a little: they hold the 2 MiB in flight.
	var held []net.Conn
	for range 2 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := io.WriteString(c, head(1<<20)+prefix); err != nil {
			t.Fatal(err)
		}
		held = append(held, c)
	}
	waitFor(t, "2 MiB in flight", func() bool { return s.inflight.Load() == 2<<20 })
	for _, n := range []int{1 << 20, 100} {
		resp, answer = rawRequest(t, addr, head(n)+prefix[:min(n, len(prefix))])
		if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" ||
			!strings.Contains(answer, "hold the limit of 2097152 body bytes") {
			t.Fatalf("Content-Length %d: status %d: %s", n, resp.StatusCode, answer)
		}
	}
	for _, c := range held {
		c.Close()
	}
	waitFor(t, "the held bytes released", func() bool { return s.inflight.Load() == 0 })
	decodeReply(t, post(t, url, wire.ContentTypeJSON, jsonTokens(t, [][]int32{{1, 2}}), nil))
	if m := string(get(t, url+"/metrics").body); !strings.Contains(m, `podsearch_encoder_rejected_requests_total{reason="inflight_bytes"} 2`) ||
		!strings.Contains(m, "podsearch_encoder_inflight_body_bytes 0") {
		t.Errorf("metrics:\n%s", m)
	}
}

// TestConcurrentLargeBodiesHeapBounded: 40 concurrent requests of 3.6 MB while the model
// is held. Only what fits MaxInflightBytes is read; the heap grows by a bounded amount
// (before the admission check, every body was read and decoded: over 250 MB).
func TestConcurrentLargeBodiesHeapBounded(t *testing.T) {
	g := newGated()
	cfg := Config{Backends: []encoder.Embedder{g}, Tokenizer: runeTokenizer{}, MaxTextBytes: 64 << 10,
		MaxBodyBytes: 4 << 20, MaxInflightBytes: 8 << 20}
	s, url := startServer(t, cfg)
	texts := make([]string, 256)
	for i := range texts {
		texts[i] = strings.Repeat("w ", 7000)
	}
	body := textsBody(t, texts) // shared by every client: the clients add no heap
	const clients = 40
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	var peak atomic.Uint64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		var ms runtime.MemStats
		for {
			select {
			case <-stop:
				return
			case <-time.After(2 * time.Millisecond):
			}
			runtime.ReadMemStats(&ms)
			if ms.HeapAlloc > peak.Load() {
				peak.Store(ms.HeapAlloc)
			}
		}
	}()
	type result struct {
		status int
		err    error
	}
	results := make(chan result, clients)
	for range clients {
		go func() {
			req, _ := http.NewRequest(http.MethodPost, url+wire.EmbedPath, bytes.NewReader(body))
			req.Header.Set("Content-Type", wire.ContentTypeJSON)
			resp, err := httpClient.Do(req)
			if err != nil {
				results <- result{err: err}
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			results <- result{status: resp.StatusCode}
		}()
	}
	// Two requests fit 8 MiB; they wait on the held model. The others are refused: with a
	// 429, or, when the client was still sending the body the server will not read, with
	// the connection closed (TestRefusedFromHeadersAlone checks the 429 itself).
	refused, resets := 0, 0
	timeout := time.After(20 * time.Second)
	var timedOut bool
wait:
	for range clients - 2 {
		select {
		case r := <-results:
			switch {
			case r.err != nil:
				resets++ // refused while the client was still sending: the connection closed
			case r.status == http.StatusTooManyRequests:
				refused++
			default:
				t.Fatalf("status %d while the model is held", r.status)
			}
		case <-timeout:
			timedOut = true
			break wait
		}
	}
	close(stop)
	<-sampled
	if timedOut {
		g.open()
		t.Fatalf("timed out waiting for the refusals (%d refused, %d closed; heap grew by %.1f MB)",
			refused, resets, float64(int64(peak.Load())-int64(before.HeapAlloc))/1e6)
	}
	if got := s.inflight.Load(); got > cfg.MaxInflightBytes {
		t.Errorf("%d bytes in flight, over the limit", got)
	}
	growth := int64(peak.Load()) - int64(before.HeapAlloc)
	t.Logf("heap grew by %.1f MB at most; %d refused with 429, %d closed while sending", float64(growth)/1e6, refused, resets)
	if growth > 80<<20 {
		t.Errorf("heap grew by %.1f MB with %d clients of %.1f MB: not bounded by MaxInflightBytes", float64(growth)/1e6, clients, float64(len(body))/1e6)
	}
	g.open()
	for range 2 {
		if r := <-results; r.err != nil || r.status != 200 {
			t.Errorf("admitted request: status %d, %v", r.status, r.err)
		}
	}
}

// TestExpiredRequestIsNeverTokenized: a request whose deadline passes while it waits for a
// turn to read, or while its texts are tokenized, costs no (further) tokenization, and one
// the queue has no room for is refused before tokenizing.
func TestExpiredRequestIsNeverTokenized(t *testing.T) {
	t.Run("while tokenizing", func(t *testing.T) {
		tok := newCountingTokenizer(20 * time.Millisecond)
		cfg := standinConfig()
		cfg.Tokenizer = tok
		_, url := startServer(t, cfg)
		texts := make([]string, 40)
		for i := range texts {
			texts[i] = fmt.Sprintf("slow text %d", i)
		}
		r := post(t, url, wire.ContentTypeJSON, textsBody(t, texts), map[string]string{wire.HeaderDeadline: "100"})
		if r.status != http.StatusGatewayTimeout || !strings.Contains(r.errorText(t), "nothing was run") {
			t.Fatalf("status %d: %s", r.status, r.body)
		}
		if n := tok.count("slow text"); n > 10 {
			t.Fatalf("%d of 40 texts tokenized for a request with 100 ms to live", n)
		}
	})
	t.Run("waiting for a turn to read", func(t *testing.T) {
		tok := newCountingTokenizer(0)
		cfg := standinConfig()
		cfg.Tokenizer = tok
		cfg.MaxConcurrentReads = 1
		_, url := startServer(t, cfg)
		first := make(chan []reply, 1)
		go func() { first <- concurrent(t, url, [][]byte{textsBody(t, []string{"block me"})}, nil) }()
		<-tok.entered // the only turn is taken
		r := post(t, url, wire.ContentTypeJSON, textsBody(t, []string{"other words"}), map[string]string{wire.HeaderDeadline: "100"})
		if r.status != http.StatusGatewayTimeout || !strings.Contains(r.errorText(t), "before the request's body was read") {
			t.Fatalf("status %d: %s", r.status, r.body)
		}
		close(tok.release)
		decodeReply(t, (<-first)[0])
		if n := tok.count("other"); n != 0 {
			t.Fatalf("the expired request's text was tokenized %d times", n)
		}
	})
	t.Run("queue full", func(t *testing.T) {
		tok := newCountingTokenizer(0)
		g := newGated()
		s, url := startServer(t, Config{Backends: []encoder.Embedder{g}, Tokenizer: tok, MaxRequestSeqs: 4,
			Batch: BatchConfig{MaxBatchSeqs: 1, MaxQueueSeqs: 4}})
		held := make(chan []reply, 1)
		go func() { held <- concurrent(t, url, [][]byte{jsonTokens(t, [][]int32{{1}})}, nil) }()
		<-g.entered
		queued := make(chan []reply, 1)
		go func() { queued <- concurrent(t, url, [][]byte{jsonTokens(t, [][]int32{{1}, {2}, {3}})}, nil) }()
		waitFor(t, "3 queued", func() bool { return s.b.depth() == 3 })
		r := post(t, url, wire.ContentTypeJSON, textsBody(t, []string{"refused one", "refused two"}), nil)
		if r.status != http.StatusTooManyRequests {
			t.Fatalf("status %d: %s", r.status, r.body)
		}
		if n := tok.count("refused"); n != 0 {
			t.Fatalf("a request the queue had no room for was tokenized (%d texts)", n)
		}
		g.open()
		decodeReply(t, (<-held)[0])
		decodeReply(t, (<-queued)[0])
	})
}
