package wasmscan

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/podsearch/podsearch/core/kmeans"
	"github.com/podsearch/podsearch/core/pq"
	"github.com/podsearch/podsearch/core/sq"
	"github.com/podsearch/podsearch/core/vec"
	"github.com/podsearch/podsearch/internal/testenv"
	wasmhost "github.com/podsearch/podsearch/wasm/host"
	"github.com/podsearch/podsearch/wasm/scanref"
)

// sift is SIFT10K (real image descriptors, d=128) with quantizers trained on it.
type sift struct {
	base, queries []float32
	d             int
	pq8, pq4      *pq.Quantizer
	sq            *sq.Quantizer
	data8, data4  Data
}

var (
	siftOnce sync.Once
	siftData *sift
	siftErr  error
)

func loadSIFT(t testing.TB) *sift {
	t.Helper()
	dir := testenv.Shared(t, "data/ann/sift10k")
	siftOnce.Do(func() { siftData, siftErr = buildSIFT(dir) })
	if siftErr != nil {
		t.Fatal(siftErr)
	}
	return siftData
}

func buildSIFT(dir string) (*sift, error) {
	s := &sift{}
	var err error
	if s.base, s.d, err = vec.ReadFvecs(dir + "/siftsmall_base.fvecs"); err != nil {
		return nil, err
	}
	if s.queries, _, err = vec.ReadFvecs(dir + "/siftsmall_query.fvecs"); err != nil {
		return nil, err
	}
	// Few Lloyd iterations on a sample keep the race-enabled test fast; parity does not
	// depend on how good the codebooks are.
	// The 8-bit shard holds the first 3,000 vectors: 256-centroid codebooks are what costs
	// time under the race detector.
	opts := kmeans.Options{Iters: 4, Seed: 7, MaxPointsPerCentroid: 8}
	n8 := 3000
	base8 := s.base[:n8*s.d]
	opts8 := kmeans.Options{Iters: 2, Seed: 7, MaxPointsPerCentroid: 4, InitPointsPerCentroid: 4}
	if s.pq8, err = pq.Train(base8, s.d, 16, 8, opts8); err != nil {
		return nil, err
	}
	if s.pq4, err = pq.Train(s.base, s.d, 32, 4, opts); err != nil {
		return nil, err
	}
	if s.sq, err = sq.Train(s.base, s.d, 8); err != nil {
		return nil, err
	}
	n := len(s.base) / s.d
	sqCodes := s.sq.EncodeAll(s.base)
	s.data8 = Data{N: n8, M: 16, Bits: 8, Codes: s.pq8.EncodeAll(base8), SQ: s.sq, SQCodes: sqCodes[:n8*s.d]}
	packed, err := pq.PackFastScan4(s.pq4.EncodeAll(s.base), n, 32)
	if err != nil {
		return nil, err
	}
	s.data4 = Data{N: n, M: 32, Bits: 4, Codes: packed, SQ: s.sq, SQCodes: sqCodes}
	return s, nil
}

func (s *sift) query(i int) []float32 { return vec.Row(s.queries, s.d, i) }

func runtimeT(t testing.TB) *wasmhost.Runtime {
	t.Helper()
	rt, err := wasmhost.Shared()
	if err != nil {
		t.Fatal(err)
	}
	return rt
}

func newShard(t testing.TB, data Data, instances int) *Shard {
	t.Helper()
	s, err := New(context.Background(), runtimeT(t), data, instances)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(context.Background()); err != nil {
			t.Error(err)
		}
	})
	return s
}

func equalResults(t testing.TB, what string, got, want []Result) {
	t.Helper()
	if !slices.Equal(got, want) {
		n := min(len(got), len(want), 5)
		t.Fatalf("%s: wasm and native differ (%d vs %d results); first: %v vs %v", what, len(got), len(want), got[:n], want[:n])
	}
}

func TestRerankParity(t *testing.T) {
	s := loadSIFT(t)
	sh := newShard(t, s.data8, 1)
	var sc scanref.Scanner
	cands := make([]uint32, 0, 777)
	for i := 0; i < 777; i++ {
		cands = append(cands, uint32((i*7919)%s.data8.N)) // repeats included
	}
	for qi := 0; qi < 10; qi++ {
		q := s.query(qi)
		for _, metric := range []struct {
			name   string
			guest  *RerankQuery
			native *sq.Query
		}{{"inner product", PrepareIP(s.sq, q), s.sq.PrepareIP(q)}, {"L2", PrepareL2(s.sq, q), s.sq.PrepareL2(q)}} {
			got, err := sh.Rerank(context.Background(), metric.guest, cands, 50)
			if err != nil {
				t.Fatal(err)
			}
			want, err := sc.Rerank(s.data8.SQCodes, s.sq.CodeSize(), metric.native, cands, 50)
			if err != nil {
				t.Fatal(err)
			}
			equalResults(t, fmt.Sprintf("rerank %s query %d", metric.name, qi), got, want)
		}
	}
}

// FuzzFastScan4Parity: random codes and tables (many ties) give the same top-k.
func FuzzFastScan4Parity(f *testing.F) {
	f.Add([]byte("seed codes for the fast scan kernel"), uint8(3), uint8(5))
	f.Add(make([]byte, 100), uint8(0), uint8(40))
	f.Add([]byte{0xff, 0x0f, 0xf0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, uint8(255), uint8(1))
	rt := runtimeT(f)
	f.Fuzz(func(t *testing.T, raw []byte, lutSeed, kk uint8) {
		const m = 6
		n := len(raw) * 2 / m
		if n == 0 {
			return
		}
		codes := make([]byte, n*m)
		for i := range codes {
			codes[i] = raw[i/2] >> (4 * (i & 1)) & 15
		}
		packed, err := pq.PackFastScan4(codes, n, m)
		if err != nil {
			t.Fatal(err)
		}
		qlut := make([]uint8, m*16)
		for i := range qlut {
			qlut[i] = uint8(i*int(lutSeed+1)*37>>3) % (lutSeed | 1)
		}
		k := int(kk)%n + 1
		sh, err := New(context.Background(), rt, Data{N: n, M: m, Bits: 4, Codes: packed}, 1)
		if err != nil {
			t.Fatal(err)
		}
		defer sh.Close(context.Background())
		got, err := sh.FastScan4(context.Background(), qlut, k)
		if err != nil {
			t.Fatal(err)
		}
		var sc scanref.Scanner
		want, err := sc.FastScan4(packed, n, m, qlut, k, 0)
		if err != nil {
			t.Fatal(err)
		}
		equalResults(t, "fuzzed fast-scan", got, want)
	})
}

// flakyCtx reports cancellation from its n-th Err call on: a deadline that passes in the
// middle of a request, deterministically.
type flakyCtx struct {
	context.Context
	calls, n int
}

func (c *flakyCtx) Err() error {
	c.calls++
	if c.calls >= c.n {
		return context.DeadlineExceeded
	}
	return nil
}

func TestDeadlineTrapAndRecovery(t *testing.T) {
	s := loadSIFT(t)
	sh := newShard(t, s.data8, 1)
	ctx := context.Background()
	lut := make([]float32, s.pq8.M*s.pq8.Ksub())
	s.pq8.L2LUT(s.query(0), lut)
	want, err := sh.Scan8(ctx, lut, 10)
	if err != nil {
		t.Fatal(err)
	}
	// A deadline already passed: nothing runs.
	dead, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := sh.Scan8(dead, lut, 10); !errors.Is(err, context.Canceled) {
		t.Fatalf("scan with a cancelled context: %v", err)
	}
	// A deadline passing between two bounded guest calls stops the request there: the
	// re-rank of every vector takes several calls.
	cands := make([]uint32, s.data8.N)
	for i := range cands {
		cands[i] = uint32(i)
	}
	if _, err := sh.Rerank(&flakyCtx{Context: ctx, n: 3}, PrepareL2(s.sq, s.query(0)), cands, 10); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("re-rank whose deadline passes mid-request: %v", err)
	}
	// A guest trap (an out-of-bounds read) is an error, and the pool recovers.
	err = sh.do(ctx, func(c *call) error {
		_, err := c.in.Call(ctx, "scan8", uint64(sh.mem.Size())-16, 1000, 16, uint64(c.sl.table), 0, uint64(c.sl.heap))
		return err
	})
	var te *wasmhost.TrapError
	if !errors.As(err, &te) {
		t.Fatalf("out-of-bounds scan returned %v, want a TrapError", err)
	}
	got, err := sh.Scan8(ctx, lut, 10)
	if err != nil {
		t.Fatal(err)
	}
	equalResults(t, "after recovery", got, want)
}

// TestShardMemoryIsOneCopy: one copy of the codes whatever the number of instances: the
// memory is the codes plus small per-instance scratch, far below two copies.
func TestShardMemoryIsOneCopy(t *testing.T) {
	s := loadSIFT(t)
	sh := newShard(t, s.data4, 3)
	codeBytes := uint64(len(s.data4.Codes) + len(s.data4.SQCodes))
	if size := sh.mem.Size(); size > codeBytes+uint64(len(sh.slots))*256<<10+256<<10 {
		t.Fatalf("shard memory %d bytes for %d bytes of codes and %d instances", size, codeBytes, len(sh.slots))
	}
}

func TestBadInput(t *testing.T) {
	s := loadSIFT(t)
	ctx := context.Background()
	rt := runtimeT(t)
	bad := []Data{
		{N: 0, M: 16, Bits: 8},
		{N: 10, M: 16, Bits: 8, Codes: make([]byte, 159)},
		{N: 10, M: 16, Bits: 4, Codes: make([]byte, 10*16)},
		{N: 10, M: 16, Bits: 5, Codes: make([]byte, 160)},
		{N: 10, M: 16, Bits: 8, Codes: make([]byte, 160), SQ: s.sq, SQCodes: make([]byte, 5)},
	}
	for i, d := range bad {
		if sh, err := New(ctx, rt, d, 1); err == nil {
			_ = sh.Close(ctx)
			t.Errorf("bad shard %d accepted", i)
		}
	}
	sh := newShard(t, s.data8, 1)
	tab := struct {
		LUT    []float32
		Rerank *RerankQuery
	}{make([]float32, s.pq8.M*s.pq8.Ksub()), PrepareIP(s.sq, s.query(0))}
	s.pq8.InnerProductLUT(s.query(0), -1, tab.LUT)
	if _, err := sh.Scan8(ctx, tab.LUT, 0); err == nil {
		t.Error("k=0 accepted")
	}
	if _, err := sh.Scan8(ctx, tab.LUT, MaxK+1); err == nil {
		t.Error("k above MaxK accepted")
	}
	if _, err := sh.Scan8(ctx, tab.LUT[:100], 10); err == nil {
		t.Error("short table accepted")
	}
	if _, err := sh.FastScan4(ctx, make([]uint8, 16*16), 10); err == nil {
		t.Error("fast-scan on 8-bit codes accepted")
	}
	if _, err := sh.Rerank(ctx, tab.Rerank, []uint32{uint32(s.data8.N)}, 1); err == nil {
		t.Error("candidate outside the shard accepted")
	}
	// The shard still answers.
	if _, err := sh.Scan8(ctx, tab.LUT, 10); err != nil {
		t.Fatal(err)
	}
}
