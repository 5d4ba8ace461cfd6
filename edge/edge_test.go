package edge

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/podsearch/podsearch/core/textclean"
	"github.com/valyala/fasthttp"
)

// testNode is an edge node serving on a free loopback port.
type testNode struct {
	srv  *Server
	base string
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// startNode starts an edge node on 127.0.0.1 with a free port; it is shut down when the
// test ends.
func startNode(t *testing.T, cfg Config) *testNode {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = quietLogger()
	}
	srv, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return &testNode{srv: srv, base: "http://" + ln.Addr().String()}
}

// goldenConfig is a node over the given episodes with the golden tokenizer and embedder.
func goldenConfig(fx *fixture, emb *goldenEmbedder, eps []Episode, version string) Config {
	return Config{
		Open: func(context.Context) (Searcher, error) {
			return NewMemorySearcher(version, goldenFingerprint, eps), nil
		},
		Tokenizer: goldenTok(fx),
		Embedder:  emb,
		// Generous deadlines: these tests check results, not timing, and CI machines under
		// the race detector can be slow. Tests of timeouts set their own.
		RequestTimeout: 30 * time.Second,
		PeerTimeout:    20 * time.Second,
		PeerToken:      testPeerToken,
	}
}

// testPeerToken guards /v1/shard-search between the test nodes.
const testPeerToken = "peer-test-token"

var client = &fasthttp.Client{ReadTimeout: 10 * time.Second, WriteTimeout: 10 * time.Second}

// reply is an HTTP answer as the tests see it.
type reply struct {
	code   int
	header map[string]string
	body   []byte
}

func (r reply) json(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("answer is not JSON (%v): %.300s", err, r.body)
	}
}

// do sends one request with a real fasthttp client.
func do(t *testing.T, method, uri string, body []byte, headers ...string) reply {
	t.Helper()
	req := fasthttp.AcquireRequest()
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.SetRequestURI(uri)
	req.Header.SetMethod(method)
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	if body != nil {
		req.Header.SetContentType("application/json")
		req.SetBody(body)
	}
	if err := client.Do(req, resp); err != nil {
		t.Fatalf("%s %.100s: %v", method, uri, err)
	}
	r := reply{code: resp.StatusCode(), header: map[string]string{}, body: append([]byte(nil), resp.Body()...)}
	for _, k := range []string{"Server-Timing", "Retry-After", "Content-Type", "WWW-Authenticate", "Allow"} {
		r.header[k] = string(resp.Header.Peek(k))
	}
	return r
}

func get(t *testing.T, uri string, headers ...string) reply {
	t.Helper()
	return do(t, fasthttp.MethodGet, uri, nil, headers...)
}

func searchURL(base string, params ...string) string {
	v := url.Values{}
	for i := 0; i+1 < len(params); i += 2 {
		v.Set(params[i], params[i+1])
	}
	return base + "/v1/search?" + v.Encode()
}

type searchAnswer struct {
	Results      []Hit    `json:"results"`
	Model        string   `json:"model"`
	IndexVersion string   `json:"index_version"`
	Mode         Mode     `json:"mode"`
	Partial      bool     `json:"partial"`
	MissingPeers []string `json:"missing_peers"`
	Degraded     string   `json:"degraded"`
}

func mustSearch(t *testing.T, base string, params ...string) searchAnswer {
	t.Helper()
	r := get(t, searchURL(base, params...))
	if r.code != fasthttp.StatusOK {
		t.Fatalf("search %v: status %d: %s", params, r.code, r.body)
	}
	var a searchAnswer
	r.json(t, &a)
	return a
}

// exactTopK is the reference dense ranking, computed here independently of the edge: float32
// inner products accumulated in order with each product rounded (as any exact float32
// search does), best first, ties by id.
func exactTopK(eps []Episode, q []float32, k int, keep func(Episode) bool) []string {
	type sc struct {
		id string
		s  float32
	}
	var all []sc
	for _, e := range eps {
		if keep != nil && !keep(e) {
			continue
		}
		var s float32
		for i := range q {
			s += float32(q[i] * e.Vector[i])
		}
		all = append(all, sc{e.ID, s})
	}
	sort.Slice(all, func(i, j int) bool {
		if all[i].s != all[j].s {
			return all[i].s > all[j].s
		}
		return all[i].id < all[j].id
	})
	var ids []string
	for i := 0; i < k && i < len(all); i++ {
		ids = append(ids, all[i].id)
	}
	return ids
}

func hitIDs(hs []Hit) []string {
	ids := make([]string, len(hs))
	for i, h := range hs {
		ids[i] = h.ID
	}
	return ids
}

// sameRanking compares id lists.
func sameRanking(got, want []string) bool {
	return fmt.Sprint(got) == fmt.Sprint(want)
}

func TestSearchDenseMatchesExactRanking(t *testing.T) {
	fx := loadFixture(t)
	emb := &goldenEmbedder{fx: fx}
	n := startNode(t, goldenConfig(fx, emb, fx.episodes, "v1"))
	byID := map[string]Episode{}
	for _, e := range fx.episodes {
		byID[e.ID] = e
	}
	for _, q := range fx.queries[:8] {
		a := mustSearch(t, n.base, "q", q.Text, "k", "5", "mode", "dense")
		want := exactTopK(fx.episodes, q.Embedding, 5, nil)
		if !sameRanking(hitIDs(a.Results), want) {
			t.Errorf("%q: got %v, exact search says %v", q.Text, hitIDs(a.Results), want)
		}
		if a.Model != goldenFingerprint || a.IndexVersion != "v1" || a.Mode != ModeDense || a.Partial {
			t.Errorf("%q: model %q index %q mode %q partial %v", q.Text, a.Model, a.IndexVersion, a.Mode, a.Partial)
		}
		for i, h := range a.Results {
			e, ok := byID[h.ID]
			if !ok || h.Title != e.Title || h.ShowTitle != e.ShowTitle {
				t.Errorf("%q: hit %d %+v does not match its source episode", q.Text, i, h)
			}
			if (h.Snippet == "") != (textclean.Clean(e.Text) == "") || strings.Contains(h.Snippet, "<p>") {
				t.Errorf("%q: hit %d snippet %q", q.Text, i, h.Snippet)
			}
			if i > 0 && h.Score > a.Results[i-1].Score {
				t.Errorf("%q: scores not descending at %d", q.Text, i)
			}
		}
	}
	// Empty optional fields (as an HTML form sends them) mean their defaults.
	empty := get(t, n.base+"/v1/search?q="+url.QueryEscape(fx.queries[0].Text)+"&k=&lang=&show=&from=&to=&mode=")
	var ea searchAnswer
	empty.json(t, &ea)
	if empty.code != 200 || len(ea.Results) != 10 || ea.Mode != ModeHybrid {
		t.Errorf("empty optional fields: %d, %d results, mode %q", empty.code, len(ea.Results), ea.Mode)
	}
	r := get(t, searchURL(n.base, "q", fx.queries[0].Text))
	st := r.header["Server-Timing"]
	for _, stage := range []string{"validate;dur=", "tokenize;dur=", "embed;dur=", "search;dur=", "merge;dur=", "total;dur="} {
		if !strings.Contains(st, stage) {
			t.Errorf("Server-Timing %q lacks %s", st, stage)
		}
	}
}

func TestSearchKeywordAndFilters(t *testing.T) {
	fx := loadFixture(t)
	n := startNode(t, goldenConfig(fx, &goldenEmbedder{fx: fx}, fx.episodes, "v1"))

	a := mustSearch(t, n.base, "q", "Christmas", "mode", "keyword", "k", "20")
	if len(a.Results) == 0 {
		t.Fatal("keyword search for Christmas found nothing")
	}
	byID := map[string]Episode{}
	for _, e := range fx.episodes {
		byID[e.ID] = e
	}
	for _, h := range a.Results {
		e := byID[h.ID]
		if !strings.Contains(strings.ToLower(e.Title+" "+e.Text), "christmas") {
			t.Errorf("keyword hit %q does not contain the word", h.Title)
		}
	}

	// Filters: only matching episodes, and all of the matching top k.
	q := fx.queries[2]
	for _, tc := range []struct {
		params []string
		keep   func(Episode) bool
	}{
		{[]string{"lang", "en"}, func(e Episode) bool { return e.Language == "en" }},
		{[]string{"lang", "EN"}, func(e Episode) bool { return e.Language == "en" }},
		{[]string{"from", "2022-01-01", "to", "2022-12-31"}, func(e Episode) bool { return e.Date.Year() == 2022 }},
		{[]string{"show", fx.episodes[0].ShowID}, func(e Episode) bool { return e.ShowID == fx.episodes[0].ShowID }},
	} {
		params := append([]string{"q", q.Text, "k", "10", "mode", "dense"}, tc.params...)
		a := mustSearch(t, n.base, params...)
		want := exactTopK(fx.episodes, q.Embedding, 10, tc.keep)
		if len(want) == 0 {
			t.Fatalf("filter %v matches no fixture episode", tc.params)
		}
		if !sameRanking(hitIDs(a.Results), want) {
			t.Errorf("filter %v: got %v want %v", tc.params, hitIDs(a.Results), want)
		}
	}

	// Hybrid returns k results that mix both signals; every hit exists.
	h := mustSearch(t, n.base, "q", q.Text, "k", "10")
	if h.Mode != ModeHybrid || len(h.Results) != 10 {
		t.Errorf("hybrid: mode %q, %d results", h.Mode, len(h.Results))
	}
}

func TestPostSeveralQueries(t *testing.T) {
	fx := loadFixture(t)
	n := startNode(t, goldenConfig(fx, &goldenEmbedder{fx: fx}, fx.episodes, "v1"))
	var body struct {
		Queries []map[string]any `json:"queries"`
	}
	for _, q := range fx.queries[:4] {
		body.Queries = append(body.Queries, map[string]any{"q": q.Text, "k": 3, "mode": "dense"})
	}
	body.Queries = append(body.Queries, map[string]any{"q": "history", "mode": "keyword", "lang": "en"})
	b, _ := json.Marshal(body)
	r := do(t, fasthttp.MethodPost, n.base+"/v1/search", b)
	if r.code != fasthttp.StatusOK {
		t.Fatalf("status %d: %s", r.code, r.body)
	}
	var a struct {
		Model, IndexVersion string
		Responses           []struct {
			Query   string `json:"query"`
			Results []Hit  `json:"results"`
		} `json:"responses"`
	}
	r.json(t, &a)
	if len(a.Responses) != 5 {
		t.Fatalf("%d responses for 5 queries", len(a.Responses))
	}
	for i, q := range fx.queries[:4] {
		single := mustSearch(t, n.base, "q", q.Text, "k", "3", "mode", "dense")
		if a.Responses[i].Query != q.Text || !sameRanking(hitIDs(a.Responses[i].Results), hitIDs(single.Results)) {
			t.Errorf("POST query %d %q differs from GET: %v vs %v", i, q.Text, hitIDs(a.Responses[i].Results), hitIDs(single.Results))
		}
	}
	if len(a.Responses[4].Results) == 0 {
		t.Error("keyword query in the batch found nothing")
	}
}
