package encoder

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"math"
	"os"
	"strconv"
	"sync"
	"testing"

	"github.com/podsearch/podsearch/core/assets"
	"github.com/podsearch/podsearch/core/tokenizer"
	"github.com/podsearch/podsearch/core/vec"
	"github.com/podsearch/podsearch/internal/testenv"
)

var (
	sharedOnce sync.Once
	shared     *Session
	sharedErr  error
)

// openSession returns one session shared by the package's tests, skipping (or failing under
// PODSEARCH_REQUIRE_MODEL=1) when the model has not been set up.
func openSession(tb testing.TB) *Session {
	tb.Helper()
	sharedOnce.Do(func() { shared, sharedErr = Open(Options{}) })
	if errors.Is(sharedErr, ErrNotSetUp) {
		testenv.SkipOrFailModel(tb, "the encoder model")
	}
	if sharedErr != nil {
		tb.Fatal(sharedErr)
	}
	return shared
}

type goldenLine struct {
	Text      string    `json:"text"`
	IDs       []int32   `json:"ids"`
	Embedding []float32 `json:"embedding"`
}

func readGolden(tb testing.TB) []goldenLine {
	tb.Helper()
	f, err := os.Open(testenv.Shared(tb, "golden/use-lite/use-lite-golden.jsonl"))
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	var out []goldenLine
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		var g goldenLine
		if err := json.Unmarshal(sc.Bytes(), &g); err != nil {
			tb.Fatal(err)
		}
		out = append(out, g)
	}
	return out
}

func cosine(a, b []float32) float64 { return vec.Cosine(a, b) }

func TestGoldenEmbeddings(t *testing.T) {
	s := openSession(t)
	gs := readGolden(t)
	worst := 1.0
	for i := 0; i < len(gs); i += 20 {
		batch := gs[i:min(i+20, len(gs))]
		ids := make([][]int32, len(batch))
		for j, g := range batch {
			ids[j] = g.IDs
		}
		vecs, err := s.Embed(context.Background(), ids)
		if err != nil {
			t.Fatal(err)
		}
		for j, g := range batch {
			c := cosine(vecs[j], g.Embedding)
			worst = math.Min(worst, c)
			if c < 0.9999 {
				t.Errorf("golden %d %.40q: cosine %.6f < 0.9999", i+j, g.Text, c)
			}
		}
	}
	t.Logf("worst cosine over %d golden texts: %.7f", len(gs), worst)
}

func TestBatchEqualsSingle(t *testing.T) {
	s := openSession(t)
	var bc struct {
		Texts      []string    `json:"texts"`
		Embeddings [][]float32 `json:"embeddings"`
	}
	raw, err := os.ReadFile(testenv.Shared(t, "golden/use-lite/batch-check.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &bc); err != nil {
		t.Fatal(err)
	}
	tok, err := tokenizer.LoadFile(assets.VocabPath())
	if err != nil {
		t.Fatal(err)
	}
	ids := make([][]int32, len(bc.Texts))
	for i, txt := range bc.Texts {
		ids[i] = tok.Encode(txt)
	}
	batch, err := s.Embed(context.Background(), ids)
	if err != nil {
		t.Fatal(err)
	}
	for i := range ids {
		single, err := s.Embed(context.Background(), ids[i:i+1])
		if err != nil {
			t.Fatal(err)
		}
		if c := cosine(batch[i], single[0]); c < 0.99999 {
			t.Errorf("text %d: batched vs single cosine %.7f < 0.99999", i, c)
		}
		if c := cosine(batch[i], bc.Embeddings[i]); c < 0.9999 {
			t.Errorf("text %d: batched vs reference cosine %.7f < 0.9999", i, c)
		}
	}
}

func TestBadInputs(t *testing.T) {
	s := openSession(t)
	if _, err := s.Embed(context.Background(), [][]int32{{5, VocabRows}}); err == nil {
		t.Error("token id out of range accepted")
	}
	if _, err := s.Embed(context.Background(), [][]int32{{-1}}); err == nil {
		t.Error("negative token id accepted")
	}
	vecs, err := s.Embed(context.Background(), nil)
	if err != nil || len(vecs) != 0 {
		t.Errorf("empty batch: %v, %d vectors", err, len(vecs))
	}
	// An empty sequence and a 1000-token one (clipped at 128) still give unit vectors.
	long := make([]int32, 1000)
	for i := range long {
		long[i] = int32(6 + i%7000)
	}
	vecs, err = s.Embed(context.Background(), [][]int32{{}, long})
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range vecs {
		if n := cosine(v, v); len(v) != Dim || math.IsNaN(n) {
			t.Errorf("vector %d: len %d, self-cosine %v", i, len(v), n)
		}
	}
	clipped, err := s.Embed(context.Background(), [][]int32{long[:MaxTokens]})
	if err != nil {
		t.Fatal(err)
	}
	if c := cosine(vecs[1], clipped[0]); c < 0.99999 {
		t.Errorf("clipping: cosine %.7f between 1000 tokens and their first 128", c)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Embed(ctx, [][]int32{{6}}); err == nil {
		t.Error("cancelled context accepted")
	}
}

func TestMissingRuntime(t *testing.T) {
	_, err := Open(Options{ModelPath: t.TempDir() + "/absent.onnx"})
	if !errors.Is(err, ErrNotSetUp) {
		t.Fatalf("missing model: got %v, want ErrNotSetUp", err)
	}
}

func TestConcurrentEmbed(t *testing.T) {
	s := openSession(t)
	want, err := s.Embed(context.Background(), [][]int32{{100, 200, 300}})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 5; i++ {
				got, err := s.Embed(context.Background(), [][]int32{{100, 200, 300}, {7}})
				if err != nil {
					errs <- err
					return
				}
				if c := cosine(got[0], want[0]); c < 0.99999 {
					errs <- errors.New("concurrent result differs")
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestCorruptModelFile(t *testing.T) {
	openSession(t) // the runtime must be loadable for this test to mean anything
	dir := t.TempDir()
	bad := dir + "/bad.onnx"
	if err := os.WriteFile(bad, []byte("this is not an onnx model"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(Options{ModelPath: bad}); err == nil {
		t.Fatal("a corrupt model file was accepted")
	}
}

// BenchmarkEmbed measures encoder throughput on real texts at several batch sizes: the
// golden set's short queries (lines 0-31) and its episode texts (lines 32-199, clipped at
// 128 tokens). It reports sentences/s.
func BenchmarkEmbed(b *testing.B) {
	s := openSession(b)
	gs := readGolden(b)
	sets := map[string][]goldenLine{"queries": gs[:32], "episodes": gs[32:]}
	for _, kind := range []string{"queries", "episodes"} {
		set := sets[kind]
		for _, size := range []int{1, 8, 32, 128} {
			b.Run(kind+"/batch="+itoa(size), func(b *testing.B) {
				// Every call takes the next texts of the set, so each batch size sees the
				// same mix of lengths.
				ids := make([][]int32, size)
				next := 0
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					for j := range ids {
						ids[j] = Clip(set[next%len(set)].IDs)
						next++
					}
					if _, err := s.Embed(context.Background(), ids); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(size*b.N)/b.Elapsed().Seconds(), "sentences/s")
			})
		}
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

func TestEmbedTextsKeepsOrder(t *testing.T) {
	s := openSession(t)
	tok, err := tokenizer.LoadFile(assets.VocabPath())
	if err != nil {
		t.Fatal(err)
	}
	var texts []string
	for _, g := range readGolden(t)[:40] {
		texts = append(texts, g.Text)
	}
	done := 0
	vecs, err := EmbedTexts(context.Background(), tok, s, texts, 7, func(n int) { done = n })
	if err != nil {
		t.Fatal(err)
	}
	if done != len(texts) || len(vecs) != len(texts) {
		t.Fatalf("progress %d, %d vectors for %d texts", done, len(vecs), len(texts))
	}
	for i, txt := range texts {
		one, err := s.Embed(context.Background(), [][]int32{Clip(tok.Encode(txt))})
		if err != nil {
			t.Fatal(err)
		}
		if c := cosine(vecs[i], one[0]); c < 0.99999 {
			t.Fatalf("text %d: batched-by-length vector differs from its own (cosine %.6f)", i, c)
		}
	}
}
