package edge

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/podsearch/podsearch/core/index"
	"github.com/podsearch/podsearch/core/textclean"
)

// buildIndex writes a real core/index folder of the fixture episodes in shards shards.
func buildIndex(t *testing.T, fx *fixture, eps []Episode, shards int) string {
	t.Helper()
	return buildIndexTB(t, fx, eps, shards)
}

var (
	modelOnce sync.Once
	model     *index.Model
	modelErr  error
)

// trainedModel trains the index model on all fixture episodes once per test binary;
// indexes of subsets reuse it (a model trained on more data is as valid for them).
func trainedModel(fx *fixture) (*index.Model, error) {
	modelOnce.Do(func() {
		var vecs []float32
		for _, e := range fx.episodes {
			vecs = append(vecs, e.Vector...)
		}
		model, modelErr = index.Train(vecs, len(fx.episodes[0].Vector), index.Config{Seed: 1, Iters: 8, Fingerprint: goldenFingerprint})
	})
	return model, modelErr
}

func buildIndexTB(t testing.TB, fx *fixture, eps []Episode, shards int) string {
	t.Helper()
	var vecs []float32
	docs := make([]index.Doc, len(eps))
	for i, e := range eps {
		docs[i] = index.Doc{ID: e.ID, ShowID: e.ShowID, ShowTitle: e.ShowTitle, Title: e.Title,
			Language: e.Language, Date: e.Date, Text: e.Title + ". " + e.Text}
		vecs = append(vecs, e.Vector...)
	}
	model, err := trainedModel(fx)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := index.Create(dir, model, shards, docs, vecs); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestIndexSearcherThroughTheEdge(t *testing.T) {
	fx := loadFixture(t)
	dir := buildIndex(t, fx, fx.episodes, 2)
	desc := map[string]string{}
	for _, e := range fx.episodes {
		desc[e.ID] = textclean.Clean(e.Text)
	}
	emb := &goldenEmbedder{fx: fx}
	n := startNode(t, Config{
		Open:       IndexOpener(IndexOptions{Dir: dir, Fingerprint: emb.Fingerprint, Descriptions: desc}),
		Tokenizer:  goldenTok(fx),
		Embedder:   emb,
		AdminToken: "t",
	})
	found, total := 0, 0
	for _, q := range fx.queries[:10] {
		a := mustSearch(t, n.base, "q", q.Text, "k", "10", "mode", "dense")
		want := map[string]bool{}
		for _, id := range exactTopK(fx.episodes, q.Embedding, 10, nil) {
			want[id] = true
		}
		for _, h := range a.Results {
			if want[h.ID] {
				found++
			}
		}
		total += len(want)
		if a.Model != goldenFingerprint || a.IndexVersion == "" {
			t.Errorf("model %q index %q", a.Model, a.IndexVersion)
		}
	}
	recall := float64(found) / float64(total)
	t.Logf("IVF-PQ + re-rank through the edge: recall@10 %.3f against exact search", recall)
	if recall < 0.9 {
		t.Errorf("recall@10 %.3f against exact search; want >= 0.9", recall)
	}

	kw := mustSearch(t, n.base, "q", "Christmas", "mode", "keyword", "lang", "en")
	if len(kw.Results) == 0 {
		t.Error("keyword search through the index found nothing")
	}
	for _, h := range kw.Results {
		if h.Snippet == "" {
			t.Errorf("hit %s has no snippet", h.ID)
		}
	}
	hy := mustSearch(t, n.base, "q", fx.queries[2].Text, "k", "5")
	if hy.Mode != ModeHybrid || len(hy.Results) != 5 {
		t.Errorf("hybrid: %q %d", hy.Mode, len(hy.Results))
	}

	// Adding episodes changes the manifest: a reload serves the new version.
	before := n.srv.IndexVersion()
	ix, err := index.Open(dir, goldenFingerprint, index.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ix.Delete([]string{fx.episodes[0].ID}); err != nil {
		t.Fatal(err)
	}
	ix.Close()
	r := do(t, "POST", n.base+"/admin/reload", nil, "Authorization", "Bearer t")
	if r.code != 200 || n.srv.IndexVersion() == before {
		t.Errorf("reload after a delete: %d %s, version %s", r.code, r.body, n.srv.IndexVersion())
	}
}

func TestIndexOpenerRefusesOtherModel(t *testing.T) {
	fx := loadFixture(t)
	dir := buildIndex(t, fx, fx.episodes[:60], 1)
	_, err := IndexOpener(IndexOptions{Dir: dir, Fingerprint: func() string { return "another-model" }})(context.Background())
	if err == nil {
		t.Fatal("opened an index of another model")
	}
	if _, err := IndexOpener(IndexOptions{Dir: t.TempDir()})(context.Background()); err == nil {
		t.Fatal("opened an empty folder")
	}
}

func TestIndexShardsSplitOverTwoNodes(t *testing.T) {
	fx := loadFixture(t)
	dir := buildIndex(t, fx, fx.episodes, 2)
	emb := &goldenEmbedder{fx: fx}
	node := func(shards []int, peers ...string) *testNode {
		return startNode(t, Config{
			Open:       IndexOpener(IndexOptions{Dir: dir, Fingerprint: emb.Fingerprint, Shards: shards}),
			Tokenizer:  goldenTok(fx),
			Embedder:   emb,
			Peers:      peers,
			PeerToken:  testPeerToken,
			AdminToken: "t",
			// Results, not timing, are under test here.
			RequestTimeout: 30 * time.Second,
			PeerTimeout:    20 * time.Second,
		})
	}
	all := node(nil)
	b := node([]int{1})
	a := node([]int{0}, b.base)
	for _, q := range fx.queries[:6] {
		for _, mode := range []string{"dense", "keyword", "hybrid"} {
			want := mustSearch(t, all.base, "q", q.Text, "k", "10", "mode", mode)
			got := mustSearch(t, a.base, "q", q.Text, "k", "10", "mode", mode)
			if mode == "hybrid" {
				// The fanning-out node fuses once, over the dense and keyword rankings merged
				// from both nodes: its answer is index.Fuse of what it answers for each mode.
				d := mustSearch(t, a.base, "q", q.Text, "k", "100", "mode", "dense")
				k := mustSearch(t, a.base, "q", q.Text, "k", "100", "mode", "keyword")
				fused, err := fuseHybrid(d.Results, k.Results, 10, index.HybridOptions{})
				if err != nil {
					t.Fatal(err)
				}
				if got.Partial || !slices.Equal(hitIDs(got.Results), hitIDs(fused)) {
					t.Errorf("hybrid %q: split %v, fused from the node's own rankings %v", q.Text, hitIDs(got.Results), hitIDs(fused))
				}
			}
			if mode == "hybrid" {
				// The fused ranking depends on the dense candidates each node re-ranks: close
				// to, not always equal to, the single node's.
				if got.Partial || len(got.Results) != len(want.Results) {
					t.Errorf("%s %q: split partial %v, %d results vs %d", mode, q.Text, got.Partial, len(got.Results), len(want.Results))
				}
				continue
			}
			if mode == "keyword" {
				// Both nodes score with the whole index's keyword statistics: the merged
				// ranking, scores included, equals the single node's.
				if got.Partial || !slices.EqualFunc(got.Results, want.Results, func(a, b Hit) bool { return a.ID == b.ID && a.Score == b.Score }) {
					t.Errorf("keyword %q: split %v, whole %v", q.Text, hitIDs(got.Results), hitIDs(want.Results))
				}
				continue
			}
			if got.Partial || !sameRanking(hitIDs(got.Results), hitIDs(want.Results)) {
				t.Errorf("%s %q: split %v, whole %v", mode, q.Text, hitIDs(got.Results), hitIDs(want.Results))
			}
		}
	}

	// Delete the top hit of shard 1 and reload that node: it is gone from the merged answer.
	q := fx.queries[0]
	top := mustSearch(t, b.base, "q", q.Text, "k", "1", "mode", "dense").Results[0].ID
	ix, err := index.Open(dir, goldenFingerprint, index.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if n, err := ix.Delete([]string{top}); err != nil || n != 1 {
		t.Fatalf("delete: %d %v", n, err)
	}
	ix.Close()
	if r := do(t, "POST", b.base+"/admin/reload", nil, "Authorization", "Bearer t"); r.code != 200 {
		t.Fatalf("reload: %d %s", r.code, r.body)
	}
	for _, h := range mustSearch(t, a.base, "q", q.Text, "k", "20", "mode", "dense").Results {
		if h.ID == top {
			t.Errorf("deleted episode %s still found", top)
		}
	}
	if _, err := IndexOpener(IndexOptions{Dir: dir, Shards: []int{2}})(context.Background()); err == nil {
		t.Error("opened shard 2 of a 2-shard index")
	}
}
