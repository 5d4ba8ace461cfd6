package scanbench

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	wasmhost "github.com/podsearch/podsearch/wasm/host"
	"github.com/podsearch/podsearch/wasm/modules"
	wasmscan "github.com/podsearch/podsearch/wasm/scan"
)

// GoGuest runs the native Go pipeline compiled to WebAssembly (modules.GoScan) over its own
// copy of a shard's data. It exists to compare Go-in-wasm with the C kernel and native Go in
// benchmarks; serving uses wasmscan.Shard. One call at a time.
type GoGuest struct {
	pool                         *wasmhost.Pool
	in                           *wasmhost.Instance
	data                         wasmscan.Data
	codes, sqCodes, table, query uint32
	cands, out                   uint32
}

// NewGoGuest instantiates the Go scan guest and copies data into it.
func NewGoGuest(ctx context.Context, rt *wasmhost.Runtime, data wasmscan.Data) (*GoGuest, error) {
	if err := data.Check(); err != nil {
		return nil, err
	}
	mod, err := rt.Compile(ctx, "goscan", modules.GoScan)
	if err != nil {
		return nil, err
	}
	pool, err := rt.NewPool(ctx, mod, wasmhost.PoolConfig{StartFunctions: []string{"_initialize"}})
	if err != nil {
		return nil, err
	}
	g := &GoGuest{pool: pool, data: data}
	if g.in, err = pool.Acquire(ctx); err != nil {
		return nil, errors.Join(err, pool.Close(ctx))
	}
	if err := g.load(ctx); err != nil {
		return nil, errors.Join(err, g.Close(ctx))
	}
	return g, nil
}

func (g *GoGuest) alloc(ctx context.Context, b []byte, n int) (uint32, error) {
	p, err := g.in.Call(ctx, "alloc", uint64(n))
	if err != nil {
		return 0, err
	}
	if b != nil && !g.in.Memory().Write(uint32(p), b) {
		return 0, errors.New("scanbench: Go guest buffer out of range")
	}
	return uint32(p), nil
}

// floatBytes is v in little-endian bytes, as the guest reads floats.
func floatBytes(v []float32) []byte {
	b := make([]byte, 0, 4*len(v))
	for _, x := range v {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(x))
	}
	return b
}

func (g *GoGuest) load(ctx context.Context) error {
	var err error
	d := g.data
	if g.codes, err = g.alloc(ctx, d.Codes, len(d.Codes)); err != nil {
		return err
	}
	if g.table, err = g.alloc(ctx, nil, 4*d.M*256); err != nil {
		return err
	}
	if g.cands, err = g.alloc(ctx, nil, 4*wasmscan.MaxK); err != nil {
		return err
	}
	if g.out, err = g.alloc(ctx, nil, 8*wasmscan.MaxK); err != nil {
		return err
	}
	if d.SQ == nil {
		return nil
	}
	if g.sqCodes, err = g.alloc(ctx, d.SQCodes, len(d.SQCodes)); err != nil {
		return err
	}
	if g.query, err = g.alloc(ctx, nil, 4*d.SQ.D); err != nil {
		return err
	}
	lo, err := g.alloc(ctx, floatBytes(d.SQ.Min), 4*d.SQ.D)
	if err != nil {
		return err
	}
	sc, err := g.alloc(ctx, floatBytes(d.SQ.Scale), 4*d.SQ.D)
	if err != nil {
		return err
	}
	st, err := g.in.Call(ctx, "sq_init", uint64(d.SQ.D), uint64(lo), uint64(sc))
	if err == nil && int32(st) != 0 {
		err = errors.New("scanbench: Go guest rejected the re-rank quantizer")
	}
	return err
}

func (g *GoGuest) results(n uint64, err error) ([]Result, error) {
	if err != nil {
		return nil, err
	}
	if int32(n) < 0 || n > wasmscan.MaxK {
		return nil, fmt.Errorf("scanbench: Go guest failed (%d)", int32(n))
	}
	raw, ok := g.in.Memory().Read(g.out, uint32(8*n))
	if !ok {
		return nil, errors.New("scanbench: Go guest results out of range")
	}
	out := make([]Result, n)
	for i := range out {
		out[i] = Result{ID: binary.LittleEndian.Uint32(raw[8*i:]), Dist: math.Float32frombits(binary.LittleEndian.Uint32(raw[8*i+4:]))}
	}
	return out, nil
}

// Search runs the Search pipeline in the Go guest; query is the raw query vector (the
// guest prepares its own re-rank query) and t its tables.
func (g *GoGuest) Search(ctx context.Context, t *Tables, query []float32, metric Metric, k, cands int) ([]Result, error) {
	d := g.data
	if err := checkK(k); err != nil {
		return nil, err
	}
	if d.SQ == nil || cands < k {
		cands = k
	}
	if err := checkK(cands); err != nil {
		return nil, err
	}
	var out []Result
	var err error
	if d.Bits == 4 {
		g.in.Memory().Write(g.table, t.QLUT)
		out, err = g.results(g.in.Call(ctx, "fastscan4", uint64(g.codes), uint64(d.N), uint64(d.M), uint64(g.table), uint64(cands), uint64(g.out)))
	} else {
		g.in.Memory().Write(g.table, floatBytes(t.LUT))
		out, err = g.results(g.in.Call(ctx, "scan8", uint64(g.codes), uint64(d.N), uint64(d.M), uint64(g.table), uint64(cands), uint64(g.out)))
	}
	if err != nil || d.SQ == nil {
		return out, err
	}
	ids := make([]byte, 4*len(out))
	for i, r := range out {
		binary.LittleEndian.PutUint32(ids[4*i:], r.ID)
	}
	g.in.Memory().Write(g.cands, ids)
	g.in.Memory().Write(g.query, floatBytes(query))
	l2 := uint64(0)
	if metric == L2 {
		l2 = 1
	}
	return g.results(g.in.Call(ctx, "rerank", uint64(g.sqCodes), uint64(d.N), uint64(g.query), l2,
		uint64(g.cands), uint64(len(out)), uint64(k), uint64(g.out)))
}

// Close frees the guest.
func (g *GoGuest) Close(ctx context.Context) error {
	if g.in != nil {
		g.pool.Release(g.in)
		g.in = nil
	}
	return g.pool.Close(ctx)
}
