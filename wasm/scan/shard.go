package wasmscan

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"github.com/podsearch/podsearch/core/pq"
	"github.com/podsearch/podsearch/core/sq"
	wasmhost "github.com/podsearch/podsearch/wasm/host"
	"github.com/podsearch/podsearch/wasm/modules"
	"github.com/podsearch/podsearch/wasm/scanref"
)

// Result is one scored vector of a shard (its number in the shard and its distance).
type Result = scanref.Result

// MaxK is the most results (and re-rank candidates) one call may ask for.
const MaxK = 4096

// Per-call work bounds: the host checks the caller's deadline between calls.
const (
	maxVectorsPerCall8 = 16384
	maxBlocksPerCall4  = 1024
	maxRerankPerCall   = 1024
	stackBytes         = 16 << 10
	// outBytes holds what one bounded call writes out (sums, distances).
	outBytes = max(2*pq.BlockSize*maxBlocksPerCall4, 4*maxVectorsPerCall8, 4*maxRerankPerCall)
)

// Data is what a shard scans: n vectors' PQ codes and, optionally, their 8-bit scalar
// codes for re-ranking.
type Data struct {
	// N is the number of vectors; M the number of sub-quantizers; Bits 8 or 4.
	N, M, Bits int
	// Codes: for Bits 8, N*M bytes row-major; for Bits 4, Blocks fast-scan blocks in the
	// pq.PackFastScan4 layout (Blocks*M*16 bytes).
	Codes []byte
	// Blocks is the number of 4-bit blocks in Codes: ceil(N/32) when 0. An index segment
	// pads every inverted list to whole blocks, so it has more.
	Blocks int
	// SQ is the 8-bit re-rank quantizer and SQCodes its N*SQ.D codes; both nil for none.
	SQ      *sq.Quantizer
	SQCodes []byte
}

func (d *Data) blocks() int {
	if d.Blocks > 0 {
		return d.Blocks
	}
	return (d.N + pq.BlockSize - 1) / pq.BlockSize
}

// Check reports whether the codes (and re-rank codes) have the sizes N, M, Bits and SQ
// say; New refuses data that fails it.
func (d *Data) Check() error {
	switch {
	case d.N <= 0 || d.N >= math.MaxInt32:
		return fmt.Errorf("wasmscan: shard of %d vectors", d.N)
	case d.Bits == 8 && d.M > 0 && len(d.Codes) == d.N*d.M:
	case d.Bits == 4 && d.M > 0 && d.M <= pq.MaxFastScanM && d.blocks() >= (d.N+pq.BlockSize-1)/pq.BlockSize &&
		len(d.Codes) == d.blocks()*d.M*16:
	default:
		return fmt.Errorf("wasmscan: %d code bytes do not hold %d vectors of m=%d at %d bits", len(d.Codes), d.N, d.M, d.Bits)
	}
	if d.SQ != nil {
		if d.SQ.Bits != 8 {
			return fmt.Errorf("wasmscan: re-rank quantizer has %d bits, the kernel reads 8", d.SQ.Bits)
		}
		if len(d.SQCodes) != d.N*d.SQ.D {
			return fmt.Errorf("wasmscan: %d re-rank code bytes for %d vectors of d=%d", len(d.SQCodes), d.N, d.SQ.D)
		}
	}
	return nil
}

// Shard is one shard's codes in a guest memory with a pool of scan instances over it. It is
// safe for concurrent use; Close it when done.
type Shard struct {
	data     Data // Codes and SQCodes are nil: the guest memory holds them
	mem      *wasmhost.Memory
	pool     *wasmhost.Pool
	codesOff uint32
	sqOff    uint32
	scaleOff uint32
	slots    []slot
}

// slot is one instance's scratch region inside the shard memory.
type slot struct {
	table, ids, heap, out, stackTop uint32
}

// New copies data into a new guest memory and starts instances scan instances on it
// (default 1). The caller may drop data's slices afterwards: the shard keeps one copy.
func New(ctx context.Context, rt *wasmhost.Runtime, data Data, instances int) (*Shard, error) {
	if err := data.Check(); err != nil {
		return nil, err
	}
	if instances <= 0 {
		instances = 1
	}
	mod, err := rt.Compile(ctx, "scan", modules.Scan)
	if err != nil {
		return nil, err
	}
	minPages, ok := mod.ImportedMemoryMinPages()
	if !ok {
		return nil, errors.New("wasmscan: the scan module imports no memory")
	}
	s := &Shard{data: data}
	s.data.Codes, s.data.SQCodes = nil, nil
	// Layout: [module's own static area][codes][re-rank codes][re-rank scales][slot 0]...
	off := uint64(minPages) * wasmhost.PageSize
	place := func(n int) uint32 {
		p := align(off)
		off = p + uint64(n)
		return uint32(p)
	}
	s.codesOff = place(len(data.Codes))
	d := 0
	if data.SQ != nil {
		d = data.SQ.D
		s.sqOff = place(len(data.SQCodes))
		s.scaleOff = place(4 * d)
	}
	tableBytes := max(data.M*256*4, 4*d)
	for i := 0; i < instances; i++ {
		var sl slot
		sl.table = place(tableBytes)
		sl.ids = place(4 * MaxK)
		sl.heap = place(8 + 8*MaxK)
		sl.out = place(outBytes)
		sl.stackTop = place(stackBytes) + stackBytes
		s.slots = append(s.slots, sl)
	}
	pages := (off + wasmhost.PageSize - 1) / wasmhost.PageSize
	if pages > uint64(rt.MemoryLimitPages()) {
		return nil, fmt.Errorf("wasmscan: shard needs %d pages (%.1f MiB) of guest memory, above the limit of %d pages",
			pages, float64(off)/(1<<20), rt.MemoryLimitPages())
	}
	s.mem, err = rt.NewMemory(ctx, uint32(pages))
	if err != nil {
		return nil, err
	}
	werr := s.mem.Write(s.codesOff, data.Codes)
	if data.SQ != nil {
		werr = errors.Join(werr, s.mem.Write(s.sqOff, data.SQCodes))
		view, err := s.mem.View(s.scaleOff, uint32(4*d))
		werr = errors.Join(werr, err)
		if err == nil {
			putFloats(view, data.SQ.Scale)
		}
	}
	if werr != nil {
		_ = s.mem.Close(ctx)
		return nil, werr
	}
	s.pool, err = rt.NewPool(ctx, mod, wasmhost.PoolConfig{
		Size:   instances,
		Memory: s.mem,
		Setup: func(ctx context.Context, in *wasmhost.Instance) error {
			sp, err := in.Global("__stack_pointer")
			if err != nil {
				return err
			}
			sp.Set(uint64(s.slots[in.Slot].stackTop))
			return nil
		},
	})
	if err != nil {
		_ = s.mem.Close(ctx)
		return nil, err
	}
	return s, nil
}

func align(off uint64) uint64 { return (off + 63) &^ 63 }

func putFloats(dst []byte, src []float32) {
	for i, v := range src {
		binary.LittleEndian.PutUint32(dst[4*i:], math.Float32bits(v))
	}
}

// Len is the number of vectors in the shard.
func (s *Shard) Len() int { return s.data.N }

// Close drains the instances and frees the memory.
func (s *Shard) Close(ctx context.Context) error {
	return errors.Join(s.pool.Close(ctx), s.mem.Close(ctx))
}

// call is one leased instance with its slot, for the duration of one request.
type call struct {
	s   *Shard
	in  *wasmhost.Instance
	sl  slot
	ctx context.Context
}

func (s *Shard) do(ctx context.Context, fn func(c *call) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.pool.Do(ctx, func(in *wasmhost.Instance) error {
		return fn(&call{s: s, in: in, sl: s.slots[in.Slot], ctx: ctx})
	})
}

func checkK(k int) error {
	if k <= 0 || k > MaxK {
		return fmt.Errorf("wasmscan: k=%d outside 1..%d", k, MaxK)
	}
	return nil
}

// topkInit empties the slot's heap.
func (c *call) topkInit(k int) error {
	_, err := c.in.Call(c.ctx, "topk_init", uint64(c.sl.heap), uint64(k))
	return err
}

// topkFinish sorts the heap and copies it out.
func (c *call) topkFinish(k int) ([]Result, error) {
	n, err := c.in.Call(c.ctx, "topk_finish", uint64(c.sl.heap))
	if err != nil {
		return nil, err
	}
	if n > uint64(k) {
		return nil, fmt.Errorf("wasmscan: guest returned %d results for k=%d", n, k)
	}
	dists, ok1 := c.in.Memory().Read(c.sl.heap+8, uint32(4*n))
	ids, ok2 := c.in.Memory().Read(c.sl.heap+8+uint32(4*k), uint32(4*n))
	if !ok1 || !ok2 {
		return nil, errors.New("wasmscan: guest heap out of range")
	}
	out := make([]Result, n)
	for i := range out {
		out[i] = Result{
			ID:   binary.LittleEndian.Uint32(ids[4*i:]),
			Dist: math.Float32frombits(binary.LittleEndian.Uint32(dists[4*i:])),
		}
	}
	return out, nil
}

// between runs between two bounded guest calls: it stops the request once its deadline passed.
func (c *call) between() error { return c.ctx.Err() }

// scan8 runs the 8-bit scan of the whole shard into a heap of k.
func (c *call) scan8(lut []float32, k int) error {
	d := c.s.data
	if len(lut) < d.M*256 {
		return fmt.Errorf("wasmscan: 8-bit table of %d entries, want %d", len(lut), d.M*256)
	}
	view, ok := c.in.Memory().Read(c.sl.table, uint32(4*d.M*256))
	if !ok {
		return errors.New("wasmscan: table region out of range")
	}
	putFloats(view, lut[:d.M*256])
	if err := c.topkInit(k); err != nil {
		return err
	}
	for a := 0; a < d.N; a += maxVectorsPerCall8 {
		if err := c.between(); err != nil {
			return err
		}
		n := min(maxVectorsPerCall8, d.N-a)
		_, err := c.in.Call(c.ctx, "scan8", uint64(c.s.codesOff)+uint64(a*d.M), uint64(n), uint64(d.M),
			uint64(c.sl.table), uint64(a), uint64(c.sl.heap))
		if err != nil {
			return err
		}
	}
	return nil
}

// fastScan4 runs the 4-bit fast-scan of the whole shard into a heap of k.
func (c *call) fastScan4(qlut []uint8, k int) error {
	d := c.s.data
	if len(qlut) < d.M*16 {
		return fmt.Errorf("wasmscan: 4-bit table of %d entries, want %d", len(qlut), d.M*16)
	}
	if !c.in.Memory().Write(c.sl.table, qlut[:d.M*16]) {
		return errors.New("wasmscan: table region out of range")
	}
	if err := c.topkInit(k); err != nil {
		return err
	}
	nblocks := (d.N + pq.BlockSize - 1) / pq.BlockSize
	for b := 0; b < nblocks; b += maxBlocksPerCall4 {
		if err := c.between(); err != nil {
			return err
		}
		nb := min(maxBlocksPerCall4, nblocks-b)
		_, err := c.in.Call(c.ctx, "fastscan4", uint64(c.s.codesOff)+uint64(b*d.M*16), uint64(nb), uint64(d.M),
			uint64(c.sl.table), uint64(b*pq.BlockSize), uint64(d.N), uint64(c.sl.heap))
		if err != nil {
			return err
		}
	}
	return nil
}

// rerank scores cands with the 8-bit scalar codes into a heap of k.
func (c *call) rerank(q *RerankQuery, cands []uint32, k int) error {
	d := c.s.data
	if d.SQ == nil {
		return errors.New("wasmscan: the shard has no re-rank codes")
	}
	if len(q.a) != d.SQ.D {
		return fmt.Errorf("wasmscan: re-rank query of d=%d for codes of d=%d", len(q.a), d.SQ.D)
	}
	if len(cands) > MaxK {
		return fmt.Errorf("wasmscan: %d re-rank candidates, at most %d", len(cands), MaxK)
	}
	mem := c.in.Memory()
	view, ok := mem.Read(c.sl.table, uint32(4*len(q.a)))
	idView, ok2 := mem.Read(c.sl.ids, uint32(4*len(cands)))
	if !ok || !ok2 {
		return errors.New("wasmscan: scratch region out of range")
	}
	putFloats(view, q.a)
	for i, id := range cands {
		if int(id) >= d.N {
			return fmt.Errorf("wasmscan: candidate %d outside the shard's %d vectors", id, d.N)
		}
		binary.LittleEndian.PutUint32(idView[4*i:], id)
	}
	if err := c.topkInit(k); err != nil {
		return err
	}
	for a := 0; a < len(cands); a += maxRerankPerCall {
		if err := c.between(); err != nil {
			return err
		}
		n := min(maxRerankPerCall, len(cands)-a)
		ids := uint64(c.sl.ids) + uint64(4*a)
		var err error
		if q.l2 {
			_, err = c.in.Call(c.ctx, "sq8_l2", uint64(c.s.sqOff), uint64(d.SQ.D), uint64(c.sl.table),
				uint64(c.s.scaleOff), ids, uint64(n), uint64(c.sl.heap))
		} else {
			_, err = c.in.Call(c.ctx, "sq8_ip", uint64(c.s.sqOff), uint64(d.SQ.D), uint64(c.sl.table),
				uint64(math.Float32bits(q.c)), ids, uint64(n), uint64(c.sl.heap))
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// Scan8 returns the k vectors with the smallest pq.Scan8 distances for the float table lut
// (M x 256): the same ids and distances as scanref.Scanner.Scan8.
func (s *Shard) Scan8(ctx context.Context, lut []float32, k int) ([]Result, error) {
	if s.data.Bits != 8 {
		return nil, errors.New("wasmscan: Scan8 on a shard of 4-bit codes")
	}
	if err := checkK(k); err != nil {
		return nil, err
	}
	var out []Result
	err := s.do(ctx, func(c *call) error {
		if err := c.scan8(lut, k); err != nil {
			return err
		}
		var err error
		out, err = c.topkFinish(k)
		return err
	})
	return out, err
}

// FastScan4 returns the k vectors with the smallest fast-scan sums for the quantized tables
// qlut (M x 16, from pq.QuantizeLUT): the same as scanref.Scanner.FastScan4.
func (s *Shard) FastScan4(ctx context.Context, qlut []uint8, k int) ([]Result, error) {
	if s.data.Bits != 4 {
		return nil, errors.New("wasmscan: FastScan4 on a shard of 8-bit codes")
	}
	if err := checkK(k); err != nil {
		return nil, err
	}
	var out []Result
	err := s.do(ctx, func(c *call) error {
		if err := c.fastScan4(qlut, k); err != nil {
			return err
		}
		var err error
		out, err = c.topkFinish(k)
		return err
	})
	return out, err
}

// Rerank returns the k candidates closest by the scalar-quantized distance (the same as
// scanref.Scanner.Rerank with the sq.Query of the same query and metric).
func (s *Shard) Rerank(ctx context.Context, q *RerankQuery, cands []uint32, k int) ([]Result, error) {
	if err := checkK(k); err != nil {
		return nil, err
	}
	var out []Result
	err := s.do(ctx, func(c *call) error {
		if err := c.rerank(q, cands, k); err != nil {
			return err
		}
		var err error
		out, err = c.topkFinish(k)
		return err
	})
	return out, err
}

// RerankQuery is a query prepared for the 8-bit re-rank kernel, computed exactly as
// sq.Quantizer.PrepareIP / PrepareL2 prepare it.
type RerankQuery struct {
	l2 bool
	a  []float32
	c  float32
}

// PrepareIP prepares query for distance -<query, decoded vector> (sq.Quantizer.PrepareIP).
func PrepareIP(q *sq.Quantizer, query []float32) *RerankQuery {
	p := &RerankQuery{a: make([]float32, q.D)}
	for j := 0; j < q.D; j++ {
		p.a[j] = query[j] * q.Scale[j]
		p.c += query[j] * q.Min[j]
	}
	return p
}

// PrepareL2 prepares query for the squared L2 distance (sq.Quantizer.PrepareL2).
func PrepareL2(q *sq.Quantizer, query []float32) *RerankQuery {
	p := &RerankQuery{l2: true, a: make([]float32, q.D)}
	for j := 0; j < q.D; j++ {
		p.a[j] = query[j] - q.Min[j]
	}
	return p
}
