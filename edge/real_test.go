package edge

import (
	"context"
	"os"
	"testing"

	"github.com/podsearch/podsearch/core/assets"
	"github.com/podsearch/podsearch/core/encoder"
	"github.com/podsearch/podsearch/core/tokenizer"
	"github.com/podsearch/podsearch/internal/testenv"
	"github.com/podsearch/podsearch/internal/testmodel"
	wasmhost "github.com/podsearch/podsearch/wasm/host"
	wasmtok "github.com/podsearch/podsearch/wasm/tokenize"
)

// TestRealTokenizerAndEncoder runs the edge with the production pieces: the real USE-lite
// tokenizer (native, and the wasm guest pool serve-edge uses by default) and the ONNX
// Runtime encoder session, over the fixture's episodes. The edge's dense ranking must be
// exactly the exact-search ranking for the vector the encoder gives the query.
func TestRealTokenizerAndEncoder(t *testing.T) {
	for _, p := range []string{assets.VocabPath(), assets.ModelPath(), assets.RuntimeLibraryPath()} {
		if _, err := os.Stat(p); err != nil {
			testenv.SkipOrFailModel(t, p)
		}
	}
	fx := loadFixture(t)
	uni, err := tokenizer.LoadFile(assets.VocabPath())
	if err != nil {
		t.Fatal(err)
	}
	sess := testmodel.Session(t)
	ctx := context.Background()
	rt, err := wasmhost.Shared()
	if err != nil {
		t.Fatal(err)
	}
	wt, err := wasmtok.New(ctx, rt, uni, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer wt.Close(ctx)

	for name, tok := range map[string]Tokenizer{"native": NativeTokenizer(uni), "wasm": wt} {
		t.Run(name, func(t *testing.T) {
			n := startNode(t, Config{
				Open: func(context.Context) (Searcher, error) {
					return NewMemorySearcher("v1", sess.Fingerprint(), fx.episodes), nil
				},
				Tokenizer: tok, Embedder: sess,
			})
			for _, q := range fx.queries[:6] {
				a := mustSearch(t, n.base, "q", q.Text, "k", "10", "mode", "dense")
				if a.Model != sess.Fingerprint() {
					t.Errorf("model %q, want the session's %q", a.Model, sess.Fingerprint())
				}
				vecs, err := sess.Embed(ctx, [][]int32{encoder.Clip(uni.Encode(q.Text))})
				if err != nil {
					t.Fatal(err)
				}
				if want := exactTopK(fx.episodes, vecs[0], 10, nil); !sameRanking(hitIDs(a.Results), want) {
					t.Errorf("%q: edge %v, exact search with the encoder's vector %v", q.Text, hitIDs(a.Results), want)
				}
			}
		})
	}
}
