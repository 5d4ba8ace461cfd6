package wasmtok

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/podsearch/podsearch/core/assets"
	"github.com/podsearch/podsearch/core/tokenizer"
	"github.com/podsearch/podsearch/internal/testenv"
	wasmhost "github.com/podsearch/podsearch/wasm/host"
	"github.com/podsearch/podsearch/wasm/modules"
)

// native loads the real USE-lite vocabulary set up by `podsearch setup`.
func native(tb testing.TB) *tokenizer.Unigram {
	tb.Helper()
	path := assets.VocabPath()
	if _, err := os.Stat(path); err != nil {
		testenv.SkipOrFailModel(tb, "vocabulary "+path)
	}
	u, err := tokenizer.LoadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	return u
}

var (
	guestOnce sync.Once
	guest     *Tokenizer
	guestErr  error
)

// wasmTokenizer is one guest pool shared by the tests of the package.
func wasmTokenizer(tb testing.TB, u *tokenizer.Unigram) *Tokenizer {
	tb.Helper()
	guestOnce.Do(func() {
		rt, err := wasmhost.Shared()
		if err != nil {
			guestErr = err
			return
		}
		guest, guestErr = New(context.Background(), rt, u, 2)
	})
	if guestErr != nil {
		tb.Fatal(guestErr)
	}
	return guest
}

func goldenTexts(tb testing.TB) ([]string, [][]int32) {
	tb.Helper()
	f, err := os.Open(testenv.Shared(tb, "golden/use-lite/use-lite-golden.jsonl"))
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	var texts []string
	var ids [][]int32
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		var g struct {
			Text string  `json:"text"`
			IDs  []int32 `json:"ids"`
		}
		if err := json.Unmarshal(sc.Bytes(), &g); err != nil {
			tb.Fatal(err)
		}
		texts = append(texts, g.Text)
		ids = append(ids, g.IDs)
	}
	if err := sc.Err(); err != nil {
		tb.Fatal(err)
	}
	return texts, ids
}

func TestGoldenParity(t *testing.T) {
	u := native(t)
	w := wasmTokenizer(t, u)
	texts, want := goldenTexts(t)
	if len(texts) != 200 {
		t.Fatalf("golden file has %d texts, want 200", len(texts))
	}
	ctx := context.Background()
	for i, text := range texts {
		got, err := w.Encode(ctx, text)
		if err != nil {
			t.Fatalf("text %d: %v", i, err)
		}
		if nat := u.Encode(text); !slices.Equal(got, nat) {
			t.Errorf("text %d: wasm %v, native %v", i, got, nat)
		}
		if !slices.Equal(got, want[i]) {
			t.Errorf("text %d: wasm %v, reference %v", i, got, want[i])
		}
	}
}

func FuzzWasmEqualsNative(f *testing.F) {
	for _, s := range []string{"", " ", "funny show about after uni party house", "\t\n", "ﬁ ligature",
		"全角ＡＢＣ", "emoji 🎧🎙️", "مرحبا", "\xff\xfe invalid", strings.Repeat("a", 3000)} {
		f.Add(s)
	}
	if p, ok := testenv.SharedSeeds(f, "golden/use-lite/use-lite-golden.jsonl"); ok {
		texts, _ := goldenFile(f, p)
		for _, s := range texts[:20] {
			f.Add(s)
		}
	}
	u := native(f)
	w := wasmTokenizer(f, u)
	f.Fuzz(func(t *testing.T, text string) {
		got, err := w.Encode(context.Background(), text)
		if err != nil {
			t.Fatal(err)
		}
		if nat := u.Encode(text); !slices.Equal(got, nat) {
			t.Fatalf("%q: wasm %v, native %v", text, got, nat)
		}
	})
}

func goldenFile(tb testing.TB, _ string) ([]string, [][]int32) { return goldenTexts(tb) }

func TestLimitsAndErrors(t *testing.T) {
	u := native(t)
	w := wasmTokenizer(t, u)
	ctx := context.Background()
	if _, err := w.Encode(ctx, strings.Repeat("x", MaxInputBytes+1)); err == nil {
		t.Fatal("an oversized text was accepted")
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := w.Encode(cctx, "hello"); err == nil {
		t.Fatal("a call with a cancelled context ran")
	}
	// The guest reports a broken vocabulary as an error, not a trap.
	rt, err := wasmhost.Shared()
	if err != nil {
		t.Fatal(err)
	}
	m, err := rt.Compile(ctx, "tokenizer", modules.Tokenizer)
	if err != nil {
		t.Fatal(err)
	}
	p, err := rt.NewPool(ctx, m, wasmhost.PoolConfig{StartFunctions: []string{"_initialize"}})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(ctx)
	err = p.Do(ctx, func(in *wasmhost.Instance) error {
		if res, err := in.Call(ctx, "tokenize", 0); err != nil || uint32(res) != 1<<32-1 {
			t.Errorf("tokenize without a vocabulary: %x, %v", res, err)
		}
		ptr, err := in.Call(ctx, "buffer", 16)
		if err != nil {
			return err
		}
		in.Memory().WriteString(uint32(ptr), "PSVOCAB1garbage!")
		status, err := in.Call(ctx, "load_vocab", 16)
		if err != nil {
			return err
		}
		if int32(status) == 0 {
			t.Error("a garbage vocabulary was accepted")
		}
		if msg := guestError(ctx, in); !strings.Contains(msg, "tokenizer") {
			t.Errorf("guest error %q does not explain", msg)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
