package edge

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestSegmentTruncatedInPlace truncates a served segment file in place (as cp over it or
// rsync --inplace would) while queries run: no crash, the node answers from its peer
// (partial) or 503 with no peer, fails /readyz, and serves again once the file is whole.
func TestSegmentTruncatedInPlace(t *testing.T) {
	fx := loadFixture(t)
	dir := buildIndex(t, fx, fx.episodes, 2)
	emb := &goldenEmbedder{fx: fx}
	node := func(shards []int, peers ...string) *testNode {
		return startNode(t, Config{
			Open:      IndexOpener(IndexOptions{Dir: dir, Fingerprint: emb.Fingerprint, Shards: shards}),
			Tokenizer: goldenTok(fx), Embedder: emb,
			Peers: peers, PeerToken: testPeerToken,
			HealInterval:   20 * time.Millisecond,
			RequestTimeout: 30 * time.Second, PeerTimeout: 20 * time.Second,
		})
	}
	all := node(nil)            // both shards, no peer
	b := node([]int{1})         // shard 1
	a := node([]int{0}, b.base) // shard 0, fans out to b
	segs, _ := filepath.Glob(filepath.Join(dir, "shard-000-*.seg"))
	if len(segs) != 1 {
		t.Fatalf("shard 0 files: %v", segs)
	}
	seg := segs[0]
	orig, err := os.ReadFile(seg)
	if err != nil {
		t.Fatal(err)
	}
	queries := fx.queries[:8]
	want := map[string][]string{}
	for _, q := range queries {
		want[q.Text] = hitIDs(mustSearch(t, all.base, "q", q.Text, "k", "10", "mode", "hybrid").Results)
	}

	// Queries on every node for the whole test; none may fail at the transport level (a
	// crashed node, a dropped connection) or answer anything but 200 or, from the node
	// without peers, 503.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var sent, bad atomic.Int64
	var badMu sync.Mutex
	var badMsgs []string
	for w, n := range []*testNode{all, a, b} {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				q := queries[(i+w)%len(queries)]
				r := get(t, searchURL(n.base, "q", q.Text, "k", "10", "mode", []string{"dense", "keyword", "hybrid"}[i%3]))
				sent.Add(1)
				if r.code == 200 || (n == all && r.code == 503) {
					continue
				}
				bad.Add(1)
				badMu.Lock()
				badMsgs = append(badMsgs, string(r.body))
				badMu.Unlock()
			}
		})
	}
	time.Sleep(100 * time.Millisecond)

	if err := os.Truncate(seg, 0); err != nil {
		t.Fatal(err)
	}
	// The node without peers: 503 with a clear message, /readyz failing.
	waitFor(t, "the node without peers to answer 503", func() bool {
		r := get(t, searchURL(all.base, "q", queries[0].Text, "mode", "dense"))
		return r.code == 503 && strings.Contains(string(r.body), "shards are unreadable")
	})
	if r := get(t, all.base+"/readyz"); r.code != 503 {
		t.Errorf("/readyz with unreadable shards: %d %s", r.code, r.body)
	}
	// The node with a peer: 200 from the peer's shard, flagged partial.
	r := mustSearch(t, a.base, "q", queries[0].Text, "k", "10", "mode", "dense")
	if !r.Partial || !strings.Contains(r.Degraded, "unreadable") || len(r.Results) == 0 {
		t.Errorf("node with a peer: partial %v, degraded %q, %d results", r.Partial, r.Degraded, len(r.Results))
	}
	// The peer's shard-search of the damaged node is refused cleanly (503), not crashed.
	time.Sleep(200 * time.Millisecond) // several failed reloads meanwhile

	// Whole again (written back in place): every node serves full answers again.
	if err := os.WriteFile(seg, orig, 0o644); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the node without peers to serve again", func() bool {
		return get(t, searchURL(all.base, "q", queries[0].Text, "mode", "dense")).code == 200 &&
			get(t, all.base+"/readyz").code == 200
	})
	waitFor(t, "the node with a peer to serve its own shard again", func() bool {
		return !mustSearch(t, a.base, "q", queries[0].Text, "mode", "dense").Partial
	})
	close(stop)
	wg.Wait()
	if bad.Load() > 0 {
		t.Errorf("%d of %d requests failed, e.g. %.300s", bad.Load(), sent.Load(), badMsgs[0])
	}
	t.Logf("%d requests while truncating and restoring", sent.Load())
	for _, q := range queries {
		got := hitIDs(mustSearch(t, all.base, "q", q.Text, "k", "10", "mode", "hybrid").Results)
		if !slices.Equal(got, want[q.Text]) {
			t.Errorf("%q after the restore: %v, before %v", q.Text, got, want[q.Text])
		}
	}
	m := string(get(t, all.base+"/metrics").body)
	if !strings.Contains(m, "podsearch_edge_unreadable_shards_total") || !strings.Contains(m, `podsearch_edge_reloads_total{result="ok"}`) {
		t.Error("metrics do not count the unreadable shards and the healing reload")
	}
}

// waitFor polls cond for up to 20 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestSegmentRewrittenInPlace overwrites a served segment file in place with other bytes of
// the same length (no SIGBUS: the pages are there, their content is not a segment): every
// query still gets an answer (200, or 503 once the node finds its shards unreadable), the
// process lives, and once the file is written back the node serves the original answers.
func TestSegmentRewrittenInPlace(t *testing.T) {
	fx := loadFixture(t)
	dir := buildIndex(t, fx, fx.episodes, 1)
	emb := &goldenEmbedder{fx: fx}
	n := startNode(t, Config{
		Open:      IndexOpener(IndexOptions{Dir: dir, Fingerprint: emb.Fingerprint}),
		Tokenizer: goldenTok(fx), Embedder: emb,
		HealInterval:   20 * time.Millisecond,
		RequestTimeout: 30 * time.Second,
	})
	segs, _ := filepath.Glob(filepath.Join(dir, "shard-000-*.seg"))
	if len(segs) != 1 {
		t.Fatalf("shard 0 files: %v", segs)
	}
	orig, err := os.ReadFile(segs[0])
	if err != nil {
		t.Fatal(err)
	}
	queries := fx.queries[:6]
	want := map[string][]string{}
	for _, q := range queries {
		want[q.Text] = hitIDs(mustSearch(t, n.base, "q", q.Text, "k", "10", "mode", "hybrid").Results)
	}
	for _, fill := range []func(i int) byte{
		func(int) byte { return 0 },
		func(int) byte { return 0xff },
		func(i int) byte { return byte(i*2654435761>>13) ^ byte(i) },
	} {
		junk := make([]byte, len(orig))
		for i := range junk {
			junk[i] = fill(i)
		}
		if err := os.WriteFile(segs[0], junk, 0o644); err != nil {
			t.Fatal(err)
		}
		for i, q := range queries {
			for _, mode := range []string{"dense", "keyword", "hybrid"} {
				r := get(t, searchURL(n.base, "q", q.Text, "k", "10", "mode", mode))
				if r.code != 200 && r.code != 503 {
					t.Errorf("fill %d, %s %q: status %d %.200s", i, mode, q.Text, r.code, r.body)
				}
			}
		}
		if err := os.WriteFile(segs[0], orig, 0o644); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the node to serve again", func() bool {
			return get(t, searchURL(n.base, "q", queries[0].Text, "mode", "dense")).code == 200
		})
	}
	for _, q := range queries {
		if got := hitIDs(mustSearch(t, n.base, "q", q.Text, "k", "10", "mode", "hybrid").Results); !slices.Equal(got, want[q.Text]) {
			t.Errorf("%q after the restore: %v, before %v", q.Text, got, want[q.Text])
		}
	}
}
