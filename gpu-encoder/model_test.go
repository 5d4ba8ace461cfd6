package gpuencoder

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sync"
	"testing"

	"github.com/podsearch/podsearch/core/assets"
	"github.com/podsearch/podsearch/core/encoder"
	"github.com/podsearch/podsearch/core/tokenizer"
	"github.com/podsearch/podsearch/gpu-encoder/wire"
	"github.com/podsearch/podsearch/internal/testenv"
)

var (
	modelOnce sync.Once
	modelSess *encoder.Session
	modelErr  error
)

// realModel opens the real USE-lite session once per test binary, skipping (or failing
// under PODSEARCH_REQUIRE_MODEL=1) when `podsearch setup` has not run.
func realModel(tb testing.TB) *encoder.Session {
	tb.Helper()
	modelOnce.Do(func() { modelSess, modelErr = encoder.Open(encoder.Options{IntraOpThreads: 1}) })
	if errors.Is(modelErr, encoder.ErrNotSetUp) {
		testenv.SkipOrFailModel(tb, "the encoder model")
	}
	if modelErr != nil {
		tb.Fatal(modelErr)
	}
	return modelSess
}

func realTokenizer(tb testing.TB) tokenizer.Tokenizer {
	tb.Helper()
	tok, err := tokenizer.LoadFile(assets.VocabPath())
	if err != nil {
		testenv.SkipOrFailModel(tb, "the tokenizer vocabulary")
	}
	return tok
}

type goldenText struct {
	Text string  `json:"text"`
	IDs  []int32 `json:"ids"`
}

func readGoldenTexts(tb testing.TB, n int) []goldenText {
	tb.Helper()
	f, err := os.Open(testenv.Shared(tb, "golden/use-lite/use-lite-golden.jsonl"))
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	var out []goldenText
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() && len(out) < n {
		var g goldenText
		if err := json.Unmarshal(sc.Bytes(), &g); err != nil {
			tb.Fatal(err)
		}
		out = append(out, g)
	}
	return out
}

func everyNth[T any](s []T, n int) []T {
	var out []T
	for i := 0; i < len(s); i += n {
		out = append(out, s[i])
	}
	return out
}

// TestRealModelVectorsEqualLibrary sends the golden texts through the service with the real
// session, as token ids (JSON and binary) and as texts, reading JSON, float32 and float16
// answers, and compares each vector with the library's own Embed of the same ids.
func TestRealModelVectorsEqualLibrary(t *testing.T) {
	sess := realModel(t)
	tok := realTokenizer(t)
	golden := everyNth(readGoldenTexts(t, 200), 25)[:8] // short queries to long descriptions
	// Two sessions' worth of workers on one session object (it is safe for concurrent use).
	_, url := startServer(t, Config{Backends: []encoder.Embedder{sess, sess}, Tokenizer: tok})
	var ids [][]int32
	var texts []string
	for _, g := range golden {
		ids = append(ids, encoder.Clip(g.IDs))
		texts = append(texts, g.Text)
	}
	want := make([][]float32, len(ids))
	for i := range ids { // one at a time: the library's single-sequence answer
		v, err := sess.Embed(context.Background(), ids[i:i+1])
		if err != nil {
			t.Fatal(err)
		}
		want[i] = v[0]
	}
	cases := []struct{ name, ctype, accept string }{
		{"json token_ids", wire.ContentTypeJSON, wire.ContentTypeJSON},
		{"binary token_ids", wire.ContentTypeTokens, wire.ContentTypeF32},
		{"binary token_ids", wire.ContentTypeTokens, wire.ContentTypeF16},
		{"json texts", wire.ContentTypeJSON, wire.ContentTypeF32},
	}
	for _, c := range cases {
		name, ctype, accept := c.name, c.ctype, c.accept
		t.Run(name+" -> "+accept, func(t *testing.T) {
			// Split in concurrent requests of 4 so that the batcher mixes them.
			var wg sync.WaitGroup
			got := make([][]float32, len(ids))
			for start := 0; start < len(ids); start += 4 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					var body []byte
					switch name {
					case "json token_ids":
						body = jsonTokens(t, ids[start:start+4])
					case "binary token_ids":
						body = wire.EncodeTokens(nil, ids[start:start+4])
					default:
						body, _ = json.Marshal(wire.JSONRequest{Texts: texts[start : start+4]})
					}
					model, vecs := decodeReply(t, post(t, url, ctype, body, map[string]string{"Accept": accept}))
					if model != sess.Fingerprint() {
						t.Errorf("model %q, want %q", model, sess.Fingerprint())
					}
					copy(got[start:], vecs)
				}()
			}
			wg.Wait()
			worst := 1.0
			for i := range want {
				worst = min(worst, cosine(got[i], want[i]))
			}
			if worst < 0.99999 {
				t.Fatalf("worst cosine to the library's vectors %.7f < 0.99999", worst)
			}
			t.Logf("worst cosine %.8f over %d vectors", worst, len(want))
		})
	}
}

// BenchmarkRealModelBatch measures the real session alone on golden texts in batches of
// 1 to 64, reporting time per sequence: the ceiling that dynamic batching can reach.
func BenchmarkRealModelBatch(b *testing.B) {
	sess := realModel(b)
	golden := readGoldenTexts(b, 64)
	for _, n := range []int{1, 4, 16, 32, 64} {
		ids := make([][]int32, n)
		for i := range ids {
			ids[i] = encoder.Clip(golden[i%len(golden)].IDs)
		}
		b.Run(fmt.Sprintf("batch=%d", n), func(b *testing.B) {
			for b.Loop() {
				if _, err := sess.Embed(context.Background(), ids); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N*n), "us/seq")
		})
	}
}
