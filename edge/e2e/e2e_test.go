package e2e

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/podsearch/podsearch/core/assets"
	"github.com/podsearch/podsearch/core/tokenizer"
	"github.com/podsearch/podsearch/internal/testenv"
	"github.com/podsearch/podsearch/internal/testmodel"
)

// testEpisodes is the size of the test index: real Taddy episodes, embedded by the real
// model (about 10 s on 2 cores).
const testEpisodes = 240

// fixture is the index and queries the tests share.
type fixture struct {
	indexDir string
	eps      map[string]bool
	desc     map[string]string
	queries  []string
}

func setup(t *testing.T) *fixture {
	t.Helper()
	for _, p := range []string{assets.VocabPath(), assets.ModelPath(), assets.RuntimeLibraryPath()} {
		if _, err := os.Stat(p); err != nil {
			testenv.SkipOrFailModel(t, p)
		}
	}
	episodes := testenv.Shared(t, "data/podcasts/taddy_sample/episodes.jsonl")
	topics := testenv.Shared(t, "data/queries/trec_podcasts_topics.jsonl")
	queries, err := ReadQueries(topics, filepath.Join(testenv.Root(t), "testdata", "handwritten_queries.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	eps, err := ReadJSONLEpisodes(episodes, testEpisodes)
	if err != nil {
		t.Fatal(err)
	}
	if len(eps) < testEpisodes/2 {
		t.Fatalf("only %d episodes read from the first %d lines", len(eps), testEpisodes)
	}
	uni, err := tokenizer.LoadFile(assets.VocabPath())
	if err != nil {
		t.Fatal(err)
	}
	sess := testmodel.Session(t)
	dir := filepath.Join(t.TempDir(), "index")
	if _, err := BuildIndex(context.Background(), dir, eps, 2, uni, sess, nil); err != nil {
		t.Fatal(err)
	}
	fx := &fixture{indexDir: dir, eps: map[string]bool{}, desc: Descriptions(eps), queries: queries}
	for _, e := range eps {
		fx.eps[e.ID] = true
	}
	return fx
}

// startRedis starts redis-server, or returns nil when it is not installed (failing the
// test instead with PODSEARCH_REQUIRE_REDIS=1).
func startRedis(t *testing.T) *Redis {
	t.Helper()
	r, err := StartRedis(t.TempDir())
	if errors.Is(err, ErrNoRedis) {
		if os.Getenv("PODSEARCH_REQUIRE_REDIS") == "1" {
			t.Fatalf("PODSEARCH_REQUIRE_REDIS=1: %v", err)
		}
		t.Logf("%v: the Redis faults are skipped, the edges use their in-process cache", err)
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Kill)
	return r
}

// TestFaultRun runs the whole system (Redis, 2 encoders with the real model, 2 edges with
// one shard each and the wasm tokenizer) under a low fixed-rate load of new and repeated
// queries while an encoder is killed, Redis is killed and restarted, a segment file of
// edge 0 is truncated in place and written back, and every edge reloads its shards after
// 3 episodes were deleted from the index. Every request must get a 200 with results that
// are real episodes of the index (and none of the deleted ones once the reload is over)
// and both edges must live through it; then a value copied over another query's Redis key
// must be refused and re-encoded, and malformed or unauthorised requests must get a 4xx
// that leaks nothing from both edges.
func TestFaultRun(t *testing.T) {
	fx := setup(t)
	redis := startRedis(t)
	opts := Options{IndexDir: fx.indexDir, Descriptions: fx.desc, WasmTokenizer: true, WasmScan: true,
		// Generous deadlines: under -race on 2 shared cores a peer call can take a while;
		// this test is about failures, not latency.
		PeerTimeout: 2 * time.Second, RequestTimeout: 4 * time.Second}
	faults := &Faults{Encoder: 1, Delete: 3, Truncate: true}
	if redis != nil {
		opts.RedisURL, faults.Redis = redis.URL(), redis
	}
	ctx := context.Background()
	c, err := Start(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	const rate, seconds = 8, 8
	r, err := Run(ctx, c, redis != nil, LoadOptions{Queries: fx.queries, Rate: rate, Duration: seconds * time.Second,
		Seed: 1, ValidIDs: fx.eps, Faults: faults, Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("fault run:\n%s", r)
	// Every request is counted; a starved machine may send a few less than rate x seconds.
	if r.Requests != r.Sent || r.Sent < rate*seconds/2 {
		t.Errorf("%d requests counted, %d sent (%d planned)", r.Requests, r.Sent, rate*seconds)
	}
	if n := r.Failed(); n != 0 {
		t.Errorf("%d of %d requests failed (status counts %v)", n, r.Requests, r.Codes)
	}
	if r.Hit.N == 0 || r.Miss.N == 0 {
		t.Errorf("the load should mix repeated (%d) and new (%d) queries", r.Hit.N, r.Miss.N)
	}
	wantEvents := 4
	if redis != nil {
		wantEvents = 6
	}
	if len(r.Events) != wantEvents {
		t.Errorf("%d faults injected, want %d: %+v", len(r.Events), wantEvents, r.Events)
	}
	for _, e := range r.Events {
		if e.Err != "" {
			t.Errorf("fault %q failed: %s", e.What, e.Err)
		}
	}
	if len(r.Deleted) != 3 || r.Reloaded.IsZero() {
		t.Errorf("deleted %v before the reload (at %v), want 3 episodes", r.Deleted, r.Reloaded)
	}

	if err := c.Alive(ctx); err != nil {
		t.Fatalf("after the fault run: %v", err)
	}

	// A Redis writer copies one query's value over another's key: refused, re-encoded.
	if redis != nil {
		p, err := c.PoisonCache(ctx, redis.URL(), "medieval beekeeping monks", "nba playoffs trade rumours")
		if err != nil {
			t.Fatal(err)
		}
		if !p.Refused || !p.Reencoded {
			t.Errorf("cache poisoning: refused %v, re-encoded %v: %s", p.Refused, p.Reencoded, p.Detail)
		}
	}

	// The edges' /metrics include the wasm guests' families.
	fams, err := c.MetricFamilies(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(fams, func(f string) bool { return strings.HasPrefix(f, "podsearch_wasm_") }) {
		t.Errorf("edge /metrics has no podsearch_wasm_ family: %v", fams)
	}

	// Malformed and unauthorised requests, through the full stack with one encoder left:
	// 4xx that leak nothing, never 5xx.
	for i := range c.Edges {
		for _, b := range c.SendBadInputs(ctx, i) {
			if !b.OK() {
				t.Errorf("edge %d, %s: status %d (want %s) %s: %s", i, b.Name, b.Status, wantStatus(b), b.Leak, b.Answer)
			}
		}
	}
	// The encoders' bad inputs (issue #17) straight to the one left alive: 4xx (431 for an
	// 8 KB header, 413 for a Content-Length over the limit), and lowercase "bearer" accepted.
	sent := 0
	for i := range c.Encoders {
		for _, b := range c.SendEncoderBadInputs(ctx, i) {
			sent++
			if !b.OK() {
				t.Errorf("encoder %d, %s: status %d (want %s) %s: %s", i, b.Name, b.Status, wantStatus(b), b.Leak, b.Answer)
			}
		}
	}
	if sent == 0 {
		t.Error("no encoder was left to send the encoders' bad inputs to")
	}
	t.Logf("%d bad inputs to each edge, %d to the encoders left", len(badInputs(c.PeerToken, c.Fingerprint)), sent)
	if err := c.Alive(ctx); err != nil {
		t.Fatalf("after the bad inputs: %v", err)
	}
}

// wantStatus says what status b had to get.
func wantStatus(b BadInput) string {
	if b.Want != 0 {
		return strconv.Itoa(b.Want)
	}
	return "4xx"
}
