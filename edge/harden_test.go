package edge

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"io"
	"log/slog"
	"math"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuffer is a bytes.Buffer safe for the concurrent writes of a logger.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// capturedLogger logs everything (Debug and up) into the returned buffer.
func capturedLogger() (*slog.Logger, *syncBuffer) {
	var buf syncBuffer
	return slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})), &buf
}

// rawRequest sends req as written on a new connection and returns the whole answer.
func rawRequest(t *testing.T, base, req string) string {
	t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(bufio.NewReader(c))
	return string(b)
}

func TestMalformedRequestLeaksNoSecrets(t *testing.T) {
	fx := loadFixture(t)
	log, logs := capturedLogger()
	cfg := goldenConfig(fx, &goldenEmbedder{fx: fx}, fx.episodes, "v1")
	cfg.Logger = log
	n := startNode(t, cfg)
	const secret, text = "sekrit-bearer-value", "medievalbeekeepingsecret"
	for _, req := range []string{
		"GET /v1/search?q=" + text + " HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + secret + "\r\nContent-Length: abc\r\n\r\n",
		"POST /v1/search?q=" + text + " HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + secret + "\r\nContent-Length: -5\r\n\r\n",
		"GET /v1/search?q=" + text + " HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + secret + "\r\nTransfer-Encoding: bogus\r\n\r\n",
		"GET /v1/search?q=" + text + " HTTP/1.1\r\nAuthorization: Bearer " + secret + "\r\nBroken header line\r\n\r\n",
	} {
		ans := rawRequest(t, n.base, req)
		if !strings.HasPrefix(ans, "HTTP/1.1 4") {
			t.Errorf("%.60q: answer %.200q, want a 4xx", req, ans)
		}
		if strings.Contains(ans, secret) || strings.Contains(ans, text) {
			t.Errorf("the answer echoes the request: %.400q", ans)
		}
	}
	// The connection errors are logged after the answer; give the logger a moment.
	time.Sleep(200 * time.Millisecond)
	got := logs.String()
	if strings.Contains(got, secret) || strings.Contains(got, text) {
		t.Errorf("the logs hold the token or the query text:\n%s", got)
	}
	for _, line := range strings.Split(got, "\n") {
		if strings.Contains(line, "level=WARN") && strings.Contains(line, "fasthttp") {
			t.Errorf("a client's malformed request is logged at WARN: %s", line)
		}
	}
	mustSearch(t, n.base, "q", "news", "mode", "keyword")
}

func TestInvisibleQueryIsEmpty(t *testing.T) {
	fx := loadFixture(t)
	n := startNode(t, goldenConfig(fx, &goldenEmbedder{fx: fx}, fx.episodes, "v1"))
	for _, q := range []string{"%E2%80%8B", "%E2%80%8B%E2%80%8C%E2%80%8D%EF%BB%BF", "%E2%80%8E%20%E2%81%A0", "%EF%B8%8F"} {
		r := get(t, n.base+"/v1/search?q="+q)
		if r.code != 400 || !strings.Contains(string(r.body), "q is empty") {
			t.Errorf("q=%s: status %d %s, want 400 q is empty", q, r.code, r.body)
		}
	}
	r := do(t, "POST", n.base+"/v1/search", []byte(`{"queries":[{"q":"\u200b\u2060"}]}`))
	if r.code != 400 || !strings.Contains(string(r.body), "q is empty") {
		t.Errorf("POST zero-width q: status %d %s", r.code, r.body)
	}
	// A zero-width joiner inside real text is still a query.
	mustSearch(t, n.base, "q", "hist\u200dory", "mode", "keyword")
}

func TestErrorsNameNoGoTypes(t *testing.T) {
	fx := loadFixture(t)
	n := startNode(t, goldenConfig(fx, &goldenEmbedder{fx: fx}, fx.episodes, "v1"))
	for _, tc := range []struct{ path, body string }{
		{"/v1/search", `{"queries":"x"}`},
		{"/v1/search", `["x"]`},
		{"/v1/search", `{"queries":[{"q":5}]}`},
		{"/v1/search", `{"queries":[{"q":"x","k":"ten"}]}`},
		{"/v1/search", `{"queries":[{"q":"x"`},
		{"/v1/search", `{"queries":[{"q":"x"}]`},
		{"/v1/search", `nul`},
		{shardSearchPath, `{"queries":5}`},
		{shardSearchPath, `{"queries":[{"k":"one"}]}`},
		{shardSearchPath, `{"queries":[{"filters":{"from":"yesterday"}}]}`},
		{shardSearchPath, `[1,2]`},
	} {
		r := do(t, "POST", n.base+tc.path, []byte(tc.body), "Authorization", "Bearer "+testPeerToken)
		if r.code != 400 {
			t.Errorf("%s %s: status %d, want 400", tc.path, tc.body, r.code)
		}
		for _, bad := range []string{"Go ", "edge.", "wire.", "time.Time", "[]", "struct"} {
			if strings.Contains(string(r.body), bad) {
				t.Errorf("%s %s: the error names Go internals (%q): %s", tc.path, tc.body, bad, r.body)
			}
		}
	}
}

// vecB64 is the peer protocol's encoding of v.
func vecB64(v []float32) string {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	return base64.StdEncoding.EncodeToString(b)
}

func filled(x float32) []float32 {
	v := make([]float32, 512)
	for i := range v {
		v[i] = x
	}
	return v
}

func TestShardSearchChecksItsInput(t *testing.T) {
	fx := loadFixture(t)
	n := startNode(t, goldenConfig(fx, &goldenEmbedder{fx: fx}, fx.episodes, "v1"))
	unit := fx.queries[0].Embedding
	req := func(v []float32) string {
		return `{"model":"` + goldenFingerprint + `","queries":[{"k":3,"mode":"dense","keywords":"x","vector":"` + vecB64(v) + `"}]}`
	}
	auth := []string{"Authorization", "Bearer " + testPeerToken}
	if r := do(t, "POST", n.base+shardSearchPath, []byte(req(unit)), auth...); r.code != 200 {
		t.Fatalf("a unit vector: status %d %s", r.code, r.body)
	}
	for _, tc := range []struct {
		name, body, msg string
	}{
		{"3e38 everywhere", req(filled(3e38)), "length"},
		{"zero vector", req(filled(0)), "length 0"},
		{"length 10", req(filled(10 / float32(math.Sqrt(512)))), "length 10"},
		{"trailing garbage", req(unit) + "garbage", "data after the JSON"},
		{"trailing object", req(unit) + " {}", "data after the JSON"},
	} {
		r := do(t, "POST", n.base+shardSearchPath, []byte(tc.body), auth...)
		if r.code != 400 || !strings.Contains(string(r.body), tc.msg) {
			t.Errorf("%s: status %d %s, want 400 saying %q", tc.name, r.code, r.body, tc.msg)
		}
	}
	// Lowercase "bearer" is the same scheme (RFC 9110: case-insensitive).
	if r := do(t, "POST", n.base+shardSearchPath, []byte(req(unit)), "Authorization", "bearer "+testPeerToken); r.code != 200 {
		t.Errorf("lowercase bearer: status %d %s", r.code, r.body)
	}
	if r := do(t, "POST", n.base+shardSearchPath, []byte(req(unit))); r.code != 401 {
		t.Errorf("no token: status %d, want 401", r.code)
	}
}

func TestShardSearchClosedWithoutPeerToken(t *testing.T) {
	fx := loadFixture(t)
	body := []byte(`{"queries":[{"k":3,"mode":"keyword","keywords":"history"}]}`)
	cfg := goldenConfig(fx, &goldenEmbedder{fx: fx}, fx.episodes, "v1")
	cfg.PeerToken = ""
	closed := startNode(t, cfg)
	if r := do(t, "POST", closed.base+shardSearchPath, body); r.code != 403 || !strings.Contains(string(r.body), "no peer token") {
		t.Errorf("no peer token configured: status %d %s, want 403", r.code, r.body)
	}
	cfg.PeerOpen = true
	open := startNode(t, cfg)
	if r := do(t, "POST", open.base+shardSearchPath, body); r.code != 200 {
		t.Errorf("PeerOpen: status %d %s", r.code, r.body)
	}
	// A node that fans out to open peers works without a token.
	cfg.Peers = []string{open.base}
	a := startNode(t, cfg)
	if got := mustSearch(t, a.base, "q", "history", "mode", "keyword"); got.Partial {
		t.Errorf("fan-out to an open peer is partial: %v", got.MissingPeers)
	}
}

func TestReloadFailureNamesNoFolder(t *testing.T) {
	fx := loadFixture(t)
	dir := buildIndex(t, fx, fx.episodes, 1)
	emb := &goldenEmbedder{fx: fx}
	n := startNode(t, Config{
		Open:      IndexOpener(IndexOptions{Dir: dir, Fingerprint: emb.Fingerprint}),
		Tokenizer: goldenTok(fx), Embedder: emb, AdminToken: "t",
	})
	segs, _ := filepath.Glob(filepath.Join(dir, "shard-*.seg"))
	if len(segs) == 0 {
		t.Fatal("no segment files")
	}
	for _, s := range segs {
		if err := os.Remove(s); err != nil {
			t.Fatal(err)
		}
	}
	r := do(t, "POST", n.base+"/admin/reload", nil, "Authorization", "Bearer t")
	if r.code != 500 {
		t.Fatalf("reload without segments: status %d %s", r.code, r.body)
	}
	if strings.Contains(string(r.body), dir) || strings.Contains(string(r.body), filepath.Dir(dir)) {
		t.Errorf("the answer names the index folder: %s", r.body)
	}
	if !strings.Contains(string(r.body), "reload failed") {
		t.Errorf("the answer does not say the reload failed: %s", r.body)
	}
}

func TestRedactPaths(t *testing.T) {
	for in, want := range map[string]string{
		"open /var/lib/x/shard-000.seg: no such file":    "open shard-000.seg: no such file",
		`index: "/a/b/manifest.json" is corrupt`:         `index: "manifest.json" is corrupt`,
		"relative/dir/file stays; (/x/y) goes":           "relative/dir/file stays; (y) goes",
		"/root/only: at start":                           "only: at start",
		"no path here, 3/4 of a ratio":                   "no path here, 3/4 of a ratio",
		"index: dir=/srv/podsearch/index lacks manifest": "index: dir=index lacks manifest",
	} {
		if got := redactPaths(in); got != want {
			t.Errorf("redactPaths(%q) = %q, want %q", in, got, want)
		}
	}
}
