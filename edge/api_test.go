package edge

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/podsearch/podsearch/internal/testmodel"
	wasmhost "github.com/podsearch/podsearch/wasm/host"
	wasmtok "github.com/podsearch/podsearch/wasm/tokenize"
)

func TestBadInputsAre4xx(t *testing.T) {
	fx := loadFixture(t)
	n := startNode(t, goldenConfig(fx, &goldenEmbedder{fx: fx}, fx.episodes, "v1"))
	big := strings.Repeat("a", 100<<10)
	manyQueries := `{"queries":[` + strings.TrimSuffix(strings.Repeat(`{"q":"x"},`, 33), ",") + `]}`
	s := n.base + "/v1/search"
	for _, tc := range []struct {
		name   string
		method string
		uri    string
		body   string
		want   int // 0: any 4xx
		msg    string
	}{
		{"missing q", "GET", s, "", 400, "q (the query text) is required"},
		{"empty q", "GET", s + "?q=", "", 400, "q is empty"},
		{"blank q", "GET", s + "?q=%20%09%0A", "", 400, "q is empty"},
		{"100 KB q", "GET", s + "?q=" + big, "", 413, "the limit is 1024"},
		{"invalid UTF-8", "GET", s + "?q=caf%C3%28", "", 400, "not valid UTF-8"},
		{"lone continuation byte", "GET", s + "?q=%80abc", "", 400, "not valid UTF-8"},
		{"unknown parameter", "GET", s + "?q=news&foo=1", "", 400, `unknown parameter "foo"`},
		{"repeated parameter", "GET", s + "?q=news&q=sport", "", 400, "more than once"},
		{"huge k", "GET", s + "?q=news&k=1000000", "", 400, "k must be between 1 and 100"},
		{"overflowing k", "GET", s + "?q=news&k=99999999999999999999999", "", 400, "k must be an integer"},
		{"zero k", "GET", s + "?q=news&k=0", "", 400, "k must be between"},
		{"negative k", "GET", s + "?q=news&k=-3", "", 400, "k must be between"},
		{"text k", "GET", s + "?q=news&k=ten", "", 400, "k must be an integer"},
		{"bad mode", "GET", s + "?q=news&mode=semantic", "", 400, "mode must be dense, keyword or hybrid"},
		{"bad lang", "GET", s + "?q=news&lang=english!", "", 400, "lang must be a language code"},
		{"bad date", "GET", s + "?q=news&from=yesterday", "", 400, "from: want a date"},
		{"from after to", "GET", s + "?q=news&from=2023-02-01&to=2023-01-01", "", 400, "is after to"},
		{"POST empty body", "POST", s, " ", 400, "request body is empty"},
		{"POST 100 KB body", "POST", s, `{"queries":[{"q":"` + big + `"}]}`, 413, "the limit is 65536"},
		{"POST invalid JSON", "POST", s, `{"queries": [`, 400, "not a valid search request"},
		{"POST unknown field", "POST", s, `{"queries":[{"q":"news","size":3}]}`, 400, `unknown field "size"`},
		{"POST wrong type", "POST", s, `{"queries":[{"q":"news","k":"ten"}]}`, 400, "not a valid search request"},
		{"POST huge k", "POST", s, `{"queries":[{"q":"news","k":1e12}]}`, 400, "not a valid search request"},
		{"POST invalid UTF-8", "POST", s, "{\"queries\":[{\"q\":\"caf\xc3\x28\"}]}", 400, "not valid UTF-8"},
		{"POST no queries", "POST", s, `{"queries":[]}`, 400, `"queries" is empty`},
		{"POST too many queries", "POST", s, manyQueries, 413, "33 queries"},
		{"POST trailing data", "POST", s, `{"queries":[{"q":"news"}]} {}`, 400, "data after the JSON"},
		{"POST empty q", "POST", s, `{"queries":[{"q":"news"},{"q":""}]}`, 400, "queries[1]: q is empty"},
		{"wrong method", "DELETE", s + "?q=news", "", 405, "not allowed"},
		{"unknown path", "GET", n.base + "/v2/search?q=news", "", 404, "no such endpoint"},
		{"shard-search short vector", "POST", n.base + shardSearchPath, `{"queries":[{"k":1,"mode":"dense","vector":"AACAPwAAAEA="}]}`, 400, "512-d vector"},
		{"shard-search decimal vector", "POST", n.base + shardSearchPath, `{"queries":[{"k":1,"mode":"dense","vector":[1,2]}]}`, 400, "want base64"},
		{"shard-search NaN vector", "POST", n.base + shardSearchPath, `{"queries":[{"k":1,"mode":"dense","vector":"AADAfw=="}]}`, 400, "not finite"},
		{"shard-search foreign model", "POST", n.base + shardSearchPath,
			`{"model":"other","queries":[{"k":1,"mode":"dense","vector":"` + base64.StdEncoding.EncodeToString(make([]byte, 4*512)) + `"}]}`, 409, "cannot search shards of model"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var body []byte
			if tc.method == "POST" {
				body = []byte(tc.body)
			}
			r := do(t, tc.method, tc.uri, body, "Authorization", "Bearer "+testPeerToken)
			if r.code < 400 || r.code >= 500 || (tc.want != 0 && r.code != tc.want) {
				t.Fatalf("status %d, want %d: %.200s", r.code, tc.want, r.body)
			}
			var e struct{ Error string }
			r.json(t, &e)
			if !strings.Contains(e.Error, tc.msg) {
				t.Errorf("error %q does not say %q", e.Error, tc.msg)
			}
		})
	}
	// The node still serves after all of that.
	mustSearch(t, n.base, "q", "news", "mode", "keyword")
}

func TestRateLimitPerClient(t *testing.T) {
	fx := loadFixture(t)
	cfg := goldenConfig(fx, &goldenEmbedder{fx: fx}, fx.episodes, "v1")
	// One token per 100 s: no token comes back during the test, however slow the machine.
	cfg.RateLimit, cfg.RateBurst, cfg.TrustForwardedFor = 0.01, 3, true
	n := startNode(t, cfg)
	u := searchURL(n.base, "q", "history", "mode", "keyword")
	for i := 0; i < 3; i++ {
		if r := get(t, u, "X-Forwarded-For", "198.51.100.7"); r.code != 200 {
			t.Fatalf("request %d within the burst: status %d", i, r.code)
		}
	}
	r := get(t, u, "X-Forwarded-For", "198.51.100.7, 10.0.0.1")
	if r.code != fasthttp.StatusTooManyRequests {
		t.Fatalf("4th request: status %d, want 429", r.code)
	}
	if s, err := strconv.Atoi(r.header["Retry-After"]); err != nil || s < 1 || s > 100 {
		t.Errorf("Retry-After %q, want 1..100 s (one token per 100 s)", r.header["Retry-After"])
	}
	// Another client has its own bucket; health checks are not limited.
	if r := get(t, u, "X-Forwarded-For", "203.0.113.9"); r.code != 200 {
		t.Errorf("other client: status %d", r.code)
	}
	if r := get(t, n.base+"/healthz"); r.code != 200 {
		t.Errorf("healthz while limited: %d", r.code)
	}
	m := get(t, n.base+"/metrics")
	if !strings.Contains(string(m.body), "podsearch_edge_rate_limited_total 1") {
		t.Error("metrics do not count the 429")
	}
}

func TestClientLimiterTableIsBounded(t *testing.T) {
	l := newClientLimiter(1, 1, 100)
	now := time.Now()
	for i := 0; i < 1000; i++ {
		if ok, _ := l.allow(fmt.Sprint("client-", i), now); !ok {
			t.Fatalf("first request of client %d refused", i)
		}
	}
	if len(l.buckets) > 100 {
		t.Fatalf("%d buckets kept, limit 100", len(l.buckets))
	}
	// A second later every bucket is full again and a sweep forgets them all.
	if ok, _ := l.allow("late", now.Add(1100*time.Millisecond)); !ok {
		t.Fatal("late client refused")
	}
	if len(l.buckets) != 1 {
		t.Fatalf("%d buckets after the sweep, want 1", len(l.buckets))
	}
}

func TestReloadAuthAndSwap(t *testing.T) {
	fx := loadFixture(t)
	var version atomic.Int64
	var opened []*countingSearcher
	var mu sync.Mutex
	cfg := goldenConfig(fx, &goldenEmbedder{fx: fx}, fx.episodes, "")
	cfg.Open = func(context.Context) (Searcher, error) {
		v := version.Add(1)
		eps := fx.episodes
		if v > 1 {
			eps = eps[:len(eps)/2] // the "new shards" hold half the episodes
		}
		cs := &countingSearcher{Searcher: NewMemorySearcher(fmt.Sprintf("v%d", v), goldenFingerprint, eps)}
		mu.Lock()
		opened = append(opened, cs)
		mu.Unlock()
		return cs, nil
	}
	cfg.AdminToken = "s3cret-admin"
	n := startNode(t, cfg)
	reload := n.base + "/admin/reload"
	for _, tc := range []struct {
		name    string
		headers []string
		want    int
	}{
		{"no token", nil, 401},
		{"wrong token", []string{"Authorization", "Bearer wrong"}, 401},
		{"prefix of the token", []string{"Authorization", "Bearer s3cret"}, 401},
		{"basic auth", []string{"Authorization", "Basic czNjcmV0LWFkbWlu"}, 401},
	} {
		if r := do(t, "POST", reload, nil, tc.headers...); r.code != tc.want {
			t.Errorf("%s: status %d, want %d", tc.name, r.code, tc.want)
		} else if tc.want == 401 && !strings.HasPrefix(r.header["WWW-Authenticate"], "Bearer") {
			t.Errorf("%s: no WWW-Authenticate challenge", tc.name)
		}
	}
	if r := get(t, reload); r.code != 405 {
		t.Errorf("GET reload: %d", r.code)
	}
	if v := mustSearch(t, n.base, "q", "history", "mode", "keyword").IndexVersion; v != "v1" {
		t.Fatalf("index version %q before reload", v)
	}

	// Reload while queries run: none fails, later ones see v2, the old shards get closed.
	var r reply
	served, failures := searchUnderLoad(n.base, fx.queries[:4], func() {
		time.Sleep(50 * time.Millisecond)
		r = do(t, "POST", reload, nil, "Authorization", "Bearer s3cret-admin")
		time.Sleep(50 * time.Millisecond)
	})
	if r.code != 200 {
		t.Fatalf("authorised reload: %d %s", r.code, r.body)
	}
	var rr struct {
		Previous     string `json:"previous"`
		IndexVersion string `json:"index_version"`
	}
	r.json(t, &rr)
	if rr.Previous != "v1" || rr.IndexVersion != "v2" {
		t.Errorf("reload answered %+v", rr)
	}
	if failures != 0 {
		t.Errorf("%d of %d queries failed during the reload", failures, served)
	}
	if v := mustSearch(t, n.base, "q", "history", "mode", "keyword").IndexVersion; v != "v2" {
		t.Errorf("index version %q after reload", v)
	}
	mu.Lock()
	defer mu.Unlock()
	if !opened[0].closed.Load() || opened[1].closed.Load() {
		t.Errorf("after reload: old closed %v, new closed %v", opened[0].closed.Load(), opened[1].closed.Load())
	}
}

func TestReloadDisabledWithoutToken(t *testing.T) {
	fx := loadFixture(t)
	n := startNode(t, goldenConfig(fx, &goldenEmbedder{fx: fx}, fx.episodes, "v1"))
	if r := do(t, "POST", n.base+"/admin/reload", nil, "Authorization", "Bearer "); r.code != 403 {
		t.Errorf("reload without a configured token: %d", r.code)
	}
}

func TestReloadRefusesOtherModel(t *testing.T) {
	fx := loadFixture(t)
	cfg := goldenConfig(fx, &goldenEmbedder{fx: fx}, fx.episodes, "v1")
	var calls atomic.Int64
	cfg.Open = func(context.Context) (Searcher, error) {
		fp := goldenFingerprint
		if calls.Add(1) > 1 {
			fp = "some-other-model"
		}
		return NewMemorySearcher(fmt.Sprint("v", calls.Load()), fp, fx.episodes), nil
	}
	cfg.AdminToken = "t"
	n := startNode(t, cfg)
	r := do(t, "POST", n.base+"/admin/reload", nil, "Authorization", "Bearer t")
	if r.code != 500 || !strings.Contains(string(r.body), "built with model some-other-model") {
		t.Errorf("reload to shards of another model: %d %s", r.code, r.body)
	}
	if v := mustSearch(t, n.base, "q", fx.queries[0].Text).IndexVersion; v != "v1" {
		t.Errorf("serving %q after a refused reload", v)
	}
}

// splitShards assigns episodes to n shards by a hash of their id, as the index does.
func splitShards(eps []Episode, n int) [][]Episode {
	out := make([][]Episode, n)
	for _, e := range eps {
		var h uint32 = 2166136261
		for i := 0; i < len(e.ID); i++ {
			h = (h ^ uint32(e.ID[i])) * 16777619
		}
		out[h%uint32(n)] = append(out[h%uint32(n)], e)
	}
	return out
}

func TestFanOutMergesPeers(t *testing.T) {
	fx := loadFixture(t)
	emb := &goldenEmbedder{fx: fx}
	shards := splitShards(fx.episodes, 2)
	b := startNode(t, goldenConfig(fx, emb, shards[1], "shard1-v1"))
	acfg := goldenConfig(fx, emb, shards[0], "shard0-v1")
	acfg.Peers = []string{b.base}
	a := startNode(t, acfg)
	for _, q := range fx.queries[:6] {
		got := mustSearch(t, a.base, "q", q.Text, "k", "10", "mode", "dense")
		want := exactTopK(fx.episodes, q.Embedding, 10, nil)
		if got.Partial || !sameRanking(hitIDs(got.Results), want) {
			t.Errorf("%q over 2 shards: partial %v, got %v want %v", q.Text, got.Partial, hitIDs(got.Results), want)
		}
	}
	// Keyword queries fan out too.
	kw := mustSearch(t, a.base, "q", "Christmas", "mode", "keyword")
	if kw.Partial || len(kw.Results) == 0 {
		t.Errorf("keyword fan-out: partial %v, %d results", kw.Partial, len(kw.Results))
	}
}

func TestFanOutDeadAndHungPeers(t *testing.T) {
	fx := loadFixture(t)
	emb := &goldenEmbedder{fx: fx}
	shards := splitShards(fx.episodes, 2)

	// A dead peer: a port nobody listens on.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + ln.Addr().String()
	ln.Close()
	// A hung peer: accepts connections and never answers.
	hung, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var conns []net.Conn
	var cmu sync.Mutex
	go func() {
		for {
			c, err := hung.Accept()
			if err != nil {
				return
			}
			cmu.Lock()
			conns = append(conns, c)
			cmu.Unlock()
		}
	}()
	t.Cleanup(func() {
		hung.Close()
		cmu.Lock()
		for _, c := range conns {
			c.Close()
		}
		cmu.Unlock()
	})

	cfg := goldenConfig(fx, emb, shards[0], "shard0-v1")
	cfg.Peers = []string{dead, "http://" + hung.Addr().String()}
	cfg.PeerTimeout = 200 * time.Millisecond
	n := startNode(t, cfg)
	q := fx.queries[1]
	start := time.Now()
	got := mustSearch(t, n.base, "q", q.Text, "k", "10", "mode", "dense")
	took := time.Since(start)
	if !got.Partial || len(got.MissingPeers) != 2 {
		t.Errorf("partial %v, missing %v; want both peers missing", got.Partial, got.MissingPeers)
	}
	if want := exactTopK(shards[0], q.Embedding, 10, nil); !sameRanking(hitIDs(got.Results), want) {
		t.Errorf("local results %v, want %v", hitIDs(got.Results), want)
	}
	// Not a timing measurement: a hung peer must be cut off by the peer timeout (200 ms),
	// not by the 30 s request deadline.
	if took > 15*time.Second {
		t.Errorf("a hung peer held the request for %v (peer timeout 200ms)", took)
	}
	m := string(get(t, n.base+"/metrics").body)
	if !strings.Contains(m, "podsearch_edge_partial_responses_total 1") || !strings.Contains(m, `podsearch_edge_peer_errors_total{peer="`+dead+`"} 1`) {
		t.Error("metrics do not count the partial answer and the dead peer")
	}
}

func TestEncoderDownDegradesHybrid(t *testing.T) {
	fx := loadFixture(t)
	emb := &goldenEmbedder{fx: fx}
	n := startNode(t, goldenConfig(fx, emb, fx.episodes, "v1"))
	emb.fail.Store(true)
	q := fx.queries[2].Text
	h := mustSearch(t, n.base, "q", q, "mode", "hybrid")
	if h.Mode != ModeKeyword || !strings.Contains(h.Degraded, "encoder is unavailable") {
		t.Errorf("hybrid with the encoder down: mode %q degraded %q", h.Mode, h.Degraded)
	}
	kw := mustSearch(t, n.base, "q", q, "mode", "keyword")
	if !sameRanking(hitIDs(h.Results), hitIDs(kw.Results)) {
		t.Errorf("degraded hybrid %v differs from keyword %v", hitIDs(h.Results), hitIDs(kw.Results))
	}
	r := get(t, searchURL(n.base, "q", q, "mode", "dense"))
	if r.code != fasthttp.StatusServiceUnavailable {
		t.Errorf("dense with the encoder down: %d %s", r.code, r.body)
	}
	emb.fail.Store(false)
	if d := mustSearch(t, n.base, "q", q, "mode", "dense"); len(d.Results) == 0 {
		t.Error("dense after the encoder came back found nothing")
	}
}

func TestKeywordOnlyNode(t *testing.T) {
	fx := loadFixture(t)
	n := startNode(t, Config{Open: func(context.Context) (Searcher, error) {
		return NewMemorySearcher("kw", "", fx.episodes), nil
	}})
	a := mustSearch(t, n.base, "q", "history podcast")
	if a.Mode != ModeKeyword || len(a.Results) == 0 {
		t.Errorf("keyword-only node: mode %q, %d results", a.Mode, len(a.Results))
	}
	if r := get(t, searchURL(n.base, "q", "history", "mode", "dense")); r.code != 400 {
		t.Errorf("dense on a keyword-only node: %d", r.code)
	}
}

func TestPageHealthMetricsAndShutdown(t *testing.T) {
	fx := loadFixture(t)
	cfg := goldenConfig(fx, &goldenEmbedder{fx: fx}, fx.episodes, "v7")
	cfg.DrainDelay = 5 * time.Second // long enough to search during the drain on a slow machine
	srv, err := New(func() Config { cfg.Logger = quietLogger(); return cfg }())
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	base := "http://" + ln.Addr().String()

	page := get(t, base+"/")
	if page.code != 200 || !strings.HasPrefix(page.header["Content-Type"], "text/html") {
		t.Fatalf("page: %d %s", page.code, page.header["Content-Type"])
	}
	for _, want := range []string{`<form id="search-form"`, `name="q"`, `/v1/search?`, `id="results"`} {
		if !strings.Contains(string(page.body), want) {
			t.Errorf("search page lacks %s", want)
		}
	}
	if r := get(t, base+"/healthz"); r.code != 200 {
		t.Errorf("healthz %d", r.code)
	}
	r := get(t, base+"/readyz")
	var ready struct{ Status, IndexVersion string }
	r.json(t, &ready)
	if r.code != 200 || ready.Status != "ready" {
		t.Errorf("readyz %d %s", r.code, r.body)
	}
	mustSearch(t, base, "q", "history", "mode", "keyword")
	m := string(get(t, base+"/metrics").body)
	for _, want := range []string{`podsearch_edge_requests_total{code="200",route="search"} 1`, "podsearch_edge_stage_duration_seconds_bucket", "podsearch_edge_ready 1", "go_goroutines"} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %s", want)
		}
	}

	// Shutdown: readyz fails during the drain delay while searches still work.
	shut := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		shut <- srv.Shutdown(ctx)
	}()
	deadline := time.Now().Add(4 * time.Second)
	for {
		if r := get(t, base+"/readyz"); r.code == 503 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("readyz never failed during shutdown")
		}
		time.Sleep(10 * time.Millisecond)
	}
	// Keep-alive connections made before the drain still get answers during it.
	mustSearch(t, base, "q", "history", "mode", "keyword")
	if err := <-shut; err != nil {
		t.Errorf("shutdown: %v", err)
	}
	if err := <-served; err != nil {
		t.Errorf("serve: %v", err)
	}
	if _, err := net.DialTimeout("tcp", ln.Addr().String(), time.Second); err == nil {
		t.Error("still accepting connections after shutdown")
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	open := func(context.Context) (Searcher, error) { return NewMemorySearcher("v", "", nil), nil }
	for name, cfg := range map[string]Config{
		"no opener":           {},
		"tokenizer only":      {Open: open, Tokenizer: goldenTok(nil)},
		"bad peer":            {Open: open, Peers: []string{"ftp://x"}, PeerToken: "p"},
		"peer with a path":    {Open: open, Peers: []string{"http://x:1/v1/search"}, PeerToken: "p"},
		"peers without token": {Open: open, Peers: []string{"http://x:1"}},
		"default k above max": {Open: open, DefaultK: 50, MaxK: 10},
		"bad mode":            {Open: open, DefaultMode: "fast"},
		"negative rate":       {Open: open, RateLimit: -1},
	} {
		if _, err := New(cfg); err == nil {
			t.Errorf("%s: New accepted it", name)
		}
	}
	failing := func(context.Context) (Searcher, error) { return nil, fmt.Errorf("shard file truncated") }
	if _, err := New(Config{Open: failing}); err == nil || !strings.Contains(err.Error(), "shard file truncated") {
		t.Errorf("failing opener: %v", err)
	}
}

func TestMergeHits(t *testing.T) {
	a := []Hit{{ID: "a", Score: 0.9}, {ID: "b", Score: 0.5}}
	b := []Hit{{ID: "c", Score: 0.7}, {ID: "b", Score: 0.6}, {ID: "d", Score: 0.5}}
	got := mergeHits(3, a, b)
	want := []Hit{{ID: "a", Score: 0.9}, {ID: "c", Score: 0.7}, {ID: "b", Score: 0.6}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("merge: %v", got)
	}
	if got := mergeHits(10, nil, b[2:], a[1:]); fmt.Sprint(hitIDs(got)) != "[b d]" {
		t.Errorf("ties by id: %v", hitIDs(got))
	}
}

func TestSnippet(t *testing.T) {
	text := strings.Repeat("filler words here. ", 30) + "Dr. Preeya Alexander explains how to stay healthy over Christmas. " + strings.Repeat("more filler text. ", 30)
	s := Snippet(text, "healthy christmas", 80)
	if !strings.Contains(s, "healthy over Christmas") || !strings.HasPrefix(s, "…") || !strings.HasSuffix(s, "…") {
		t.Errorf("snippet %q", s)
	}
	if n := len([]rune(s)); n > 82 {
		t.Errorf("snippet has %d runes", n)
	}
	if s := Snippet("short text", "x", 80); s != "short text" {
		t.Errorf("short: %q", s)
	}
	if s := Snippet(strings.Repeat("x", 300), "x", 50); len([]rune(s)) != 51 {
		t.Errorf("one long word: %q", s)
	}
	if s := Snippet(text, "zzz", 60); !strings.HasPrefix(s, "filler") {
		t.Errorf("no query term: should start at the beginning, got %q", s)
	}
}

func FuzzParseGet(f *testing.F) {
	for _, seed := range []string{"q=news", "q=caf%C3%28&k=3", "q=a&k=999999999999999999999", "q=%00%01&lang=pt-BR&from=2020-01-01&to=2019-01-01", "foo=1", "q=x&q=y", "q=" + strings.Repeat("%FF", 50)} {
		f.Add(seed)
	}
	v := validator{maxQueryBytes: 1024, maxQueries: 32, maxBodyBytes: 64 << 10, defaultK: 10, maxK: 100, defaultMode: ModeHybrid}
	f.Fuzz(func(t *testing.T, qs string) {
		var args fasthttp.Args
		args.Parse(qs)
		q, err := v.parseGet(&args)
		if err != nil {
			if err.status < 400 || err.status >= 500 || err.msg == "" {
				t.Fatalf("%q: status %d %q", qs, err.status, err.msg)
			}
			return
		}
		if q.Text == "" || q.K < 1 || q.K > 100 || Normalize(q.Text) != q.Text {
			t.Fatalf("%q accepted as %+v", qs, q)
		}
	})
}

func FuzzParsePost(f *testing.F) {
	for _, seed := range []string{`{"queries":[{"q":"news"}]}`, `{"queries":[{"q":"a","k":3,"mode":"dense","lang":"en"}]}`, `{`, `[]`, `{"queries":null}`, "{\"queries\":[{\"q\":\"\xff\"}]}"} {
		f.Add([]byte(seed))
	}
	v := validator{maxQueryBytes: 1024, maxQueries: 32, maxBodyBytes: 64 << 10, defaultK: 10, maxK: 100, defaultMode: ModeHybrid}
	f.Fuzz(func(t *testing.T, body []byte) {
		qs, err := v.parsePost(body)
		if err != nil {
			if err.status < 400 || err.status >= 500 || err.msg == "" {
				t.Fatalf("status %d %q", err.status, err.msg)
			}
			return
		}
		if len(qs) == 0 || len(qs) > 32 {
			t.Fatalf("%d queries accepted", len(qs))
		}
		if _, err := json.Marshal(qs); err != nil {
			t.Fatal(err)
		}
	})
}

func FuzzSnippet(f *testing.F) {
	f.Add("Dr. Preeya Alexander explains how to stay healthy over Christmas.", "christmas", 20)
	f.Add("日本語のテキスト、ポッドキャスト", "テキスト", 5)
	f.Add("", "", 0)
	f.Fuzz(func(t *testing.T, text, q string, n int) {
		n = n % 500
		s := Snippet(text, q, n)
		if n > 0 && len([]rune(s)) > n+2 {
			t.Fatalf("snippet of %d runes for n=%d", len([]rune(s)), n)
		}
	})
}

func TestWatchReloadsOnChange(t *testing.T) {
	fx := loadFixture(t)
	dir := t.TempDir()
	manifest := dir + "/manifest.json"
	if err := os.WriteFile(manifest, []byte(`{"v":1}`), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := goldenConfig(fx, &goldenEmbedder{fx: fx}, fx.episodes, "")
	cfg.Open = func(context.Context) (Searcher, error) {
		b, err := os.ReadFile(manifest)
		if err != nil {
			return nil, err
		}
		return NewMemorySearcher(string(b), goldenFingerprint, fx.episodes), nil
	}
	n := startNode(t, cfg)
	ctx, cancel := context.WithCancel(context.Background())
	done := n.srv.Watch(ctx, manifest, 10*time.Millisecond)
	defer func() { cancel(); <-done }()
	tmp := manifest + ".tmp"
	if err := os.WriteFile(tmp, []byte(`{"v":2}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, manifest); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for n.srv.IndexVersion() != `{"v":2}` {
		if time.Now().After(deadline) {
			t.Fatalf("still serving %s after the watched file changed", n.srv.IndexVersion())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// versionedTokenizer is a tokenizer generation for the hot-swap test.
type versionedTokenizer struct {
	Tokenizer
	calls  atomic.Int64
	closed atomic.Bool
}

func (v *versionedTokenizer) Encode(ctx context.Context, text string) ([]int32, error) {
	v.calls.Add(1)
	return v.Tokenizer.Encode(ctx, text)
}

func (v *versionedTokenizer) Close(context.Context) error {
	v.closed.Store(true)
	return nil
}

func TestReloadSwapsTokenizerModule(t *testing.T) {
	fx := loadFixture(t)
	var mu sync.Mutex
	var gens []*versionedTokenizer
	failNext := atomic.Bool{}
	cfg := goldenConfig(fx, &goldenEmbedder{fx: fx}, fx.episodes, "v1")
	cfg.Tokenizer = nil
	cfg.OpenTokenizer = func(context.Context) (Tokenizer, error) {
		if failNext.Load() {
			return nil, fmt.Errorf("tokenizer.wasm: bad module")
		}
		v := &versionedTokenizer{Tokenizer: goldenTok(fx)}
		mu.Lock()
		gens = append(gens, v)
		mu.Unlock()
		return v, nil
	}
	cfg.AdminToken = "t"
	n := startNode(t, cfg)
	q := fx.queries[0].Text
	mustSearch(t, n.base, "q", q, "mode", "dense")
	if r := do(t, "POST", n.base+"/admin/reload", nil, "Authorization", "Bearer t"); r.code != 200 {
		t.Fatalf("reload: %d %s", r.code, r.body)
	}
	mustSearch(t, n.base, "q", q, "mode", "dense")
	failNext.Store(true)
	if r := do(t, "POST", n.base+"/admin/reload", nil, "Authorization", "Bearer t"); r.code != 500 || !strings.Contains(string(r.body), "bad module") {
		t.Errorf("reload with a broken module: %d %s", r.code, r.body)
	}
	mustSearch(t, n.base, "q", q, "mode", "dense")
	mu.Lock()
	defer mu.Unlock()
	if len(gens) != 2 {
		t.Fatalf("%d tokenizer generations, want 2", len(gens))
	}
	if gens[0].calls.Load() != 1 || gens[1].calls.Load() != 2 {
		t.Errorf("calls per generation %d, %d; want 1 then 2", gens[0].calls.Load(), gens[1].calls.Load())
	}
	if !gens[0].closed.Load() || gens[1].closed.Load() {
		t.Errorf("closed: old %v, current %v", gens[0].closed.Load(), gens[1].closed.Load())
	}
}

// searchUnderLoad runs dense searches of the given queries (one worker each) on the node at
// base until during returns, and counts the searches and the failed ones.
func searchUnderLoad(base string, queries []goldenLine, during func()) (served, failures int64) {
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var nFail, nServed atomic.Int64
	for _, q := range queries {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				req := fasthttp.AcquireRequest()
				resp := fasthttp.AcquireResponse()
				req.SetRequestURI(searchURL(base, "q", q.Text, "mode", "dense"))
				if err := client.Do(req, resp); err != nil || resp.StatusCode() != 200 {
					nFail.Add(1)
				}
				nServed.Add(1)
				fasthttp.ReleaseRequest(req)
				fasthttp.ReleaseResponse(resp)
			}
		})
	}
	during()
	close(stop)
	wg.Wait()
	return nServed.Load(), nFail.Load()
}

// closeTracked is a wasm tokenizer that records its Close.
type closeTracked struct {
	*wasmtok.Tokenizer
	closed atomic.Bool
}

func (c *closeTracked) Close(ctx context.Context) error {
	c.closed.Store(true)
	return c.Tokenizer.Close(ctx)
}

// TestReloadSwapsWasmModuleUnderLoad reloads a node whose tokenizer is the wasm guest pool
// (as serve-edge runs it) while queries run: every reload swaps in a new module instance
// pool, no query fails, and every old pool is closed once drained.
func TestReloadSwapsWasmModuleUnderLoad(t *testing.T) {
	fx := loadFixture(t)
	uni := testmodel.Tokenizer(t)
	rt, err := wasmhost.Shared()
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var gens []*closeTracked
	cfg := goldenConfig(fx, &goldenEmbedder{fx: fx}, fx.episodes, "v1")
	cfg.Tokenizer = nil
	cfg.OpenTokenizer = func(ctx context.Context) (Tokenizer, error) {
		wt, err := wasmtok.New(ctx, rt, uni, 2)
		if err != nil {
			return nil, err
		}
		c := &closeTracked{Tokenizer: wt}
		mu.Lock()
		gens = append(gens, c)
		mu.Unlock()
		return c, nil
	}
	cfg.AdminToken = "t"
	n := startNode(t, cfg)
	const reloads = 5
	served, failures := searchUnderLoad(n.base, fx.queries[:4], func() {
		for range reloads {
			time.Sleep(20 * time.Millisecond)
			if r := do(t, "POST", n.base+"/admin/reload", nil, "Authorization", "Bearer t"); r.code != 200 {
				t.Errorf("reload: %d %s", r.code, r.body)
			}
		}
		time.Sleep(20 * time.Millisecond)
	})
	if failures != 0 || served == 0 {
		t.Errorf("%d of %d queries failed across %d reloads", failures, served, reloads)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(gens) != reloads+1 {
		t.Fatalf("%d tokenizer generations, want %d", len(gens), reloads+1)
	}
	for i, g := range gens[:reloads] {
		if !g.closed.Load() {
			t.Errorf("tokenizer generation %d still open after its reload", i)
		}
	}
	if gens[reloads].closed.Load() {
		t.Error("the current tokenizer was closed")
	}
}

func FuzzVectorJSON(f *testing.F) {
	f.Add([]byte(`"AACAPwAAAEA="`))
	f.Add([]byte(`[1,2]`))
	f.Add([]byte(`"AADAfw=="`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var v Vector
		if err := json.Unmarshal(data, &v); err != nil {
			return
		}
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		var back Vector
		if err := json.Unmarshal(b, &back); err != nil || fmt.Sprint(back) != fmt.Sprint(v) {
			t.Fatalf("round trip of %v: %v %v", v, back, err)
		}
	})
}
