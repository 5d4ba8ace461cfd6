package wasmscan

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"github.com/podsearch/podsearch/core/index"
	"github.com/podsearch/podsearch/core/pq"
	wasmhost "github.com/podsearch/podsearch/wasm/host"
)

// Backend runs core/index's scan and re-rank loops in the scan guest: each segment's codes
// are copied once into a guest memory of their own, served by a pool of instances. Set it as
// index.OpenOptions.Backend (or pass it to index.AttachKernels); searches return exactly the
// hits of the native Go kernel, because the guest computes the same sums and distances bit
// for bit and the search around them (probing, filters, tombstones, top-k) is the same Go.
type Backend struct {
	rt        *wasmhost.Runtime
	instances int
}

// NewBackend returns a Backend on rt with instances guest instances per segment (default 2):
// the number of queries one segment scans at once.
func NewBackend(rt *wasmhost.Runtime, instances int) *Backend {
	if instances <= 0 {
		instances = 2
	}
	return &Backend{rt: rt, instances: instances}
}

// Name is "wasm".
func (b *Backend) Name() string { return "wasm" }

// NewKernel copies seg's codes into a new guest memory and starts its instances. 8-bit
// re-rank codes are copied too and re-ranked in the guest; 4-bit ones are re-ranked
// natively (the guest has no 4-bit re-rank kernel).
func (b *Backend) NewKernel(ctx context.Context, seg *index.Segment) (index.Kernel, error) {
	m := seg.Model()
	codes, sqCodes := seg.ScanCodes()
	data := Data{N: seg.Len(), M: m.PQ.M, Bits: m.PQ.Bits, Codes: codes, Blocks: seg.Blocks()}
	if m.SQ != nil && m.SQ.Bits == 8 {
		data.SQ, data.SQCodes = m.SQ, sqCodes
	}
	sh, err := New(ctx, b.rt, data, b.instances)
	if err != nil {
		return nil, err
	}
	return &kernel{shard: sh}, nil
}

type kernel struct {
	shard *Shard
}

func (k *kernel) Reranks() bool { return k.shard.data.SQ != nil }

func (k *kernel) Close(ctx context.Context) error { return k.shard.Close(ctx) }

func (k *kernel) Begin(ctx context.Context, t *index.QueryTables) (index.KernelCall, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	in, err := k.shard.pool.Acquire(ctx)
	if err != nil {
		return nil, err
	}
	s := k.shard
	return &kernelCall{call: call{s: s, in: in, sl: s.slots[in.Slot], ctx: ctx}, t: t}, nil
}

// kernelCall is one query's leased instance. The table is written on the first scan, the
// re-rank query on the first re-rank (it takes the table's place).
type kernelCall struct {
	call
	t        *index.QueryTables
	tableSet bool
	rq       *RerankQuery
}

func (c *kernelCall) End() {
	if c.in != nil {
		c.s.pool.Release(c.in)
		c.in = nil
	}
}

func (c *kernelCall) setTable() error {
	if c.tableSet {
		return nil
	}
	d := c.s.data
	mem := c.in.Memory()
	if d.Bits == 4 {
		if len(c.t.QLUT) < d.M*16 || !mem.Write(c.sl.table, c.t.QLUT[:d.M*16]) {
			return errors.New("wasmscan: 4-bit table missing or out of range")
		}
	} else {
		view, ok := mem.Read(c.sl.table, uint32(4*d.M*256))
		if len(c.t.LUT) < d.M*256 || !ok {
			return errors.New("wasmscan: 8-bit table missing or out of range")
		}
		putFloats(view, c.t.LUT[:d.M*256])
	}
	c.tableSet = true
	return nil
}

// out returns the slot's output region holding n values of size bytes each.
func (c *kernelCall) out(n, size int) ([]byte, error) {
	view, ok := c.in.Memory().Read(c.sl.out, uint32(n*size))
	if !ok {
		return nil, errors.New("wasmscan: output region out of range")
	}
	return view, nil
}

func (c *kernelCall) FastScan4(blocks []index.Range, out []uint16) error {
	d := c.s.data
	if d.Bits != 4 {
		return fmt.Errorf("wasmscan: fast-scan of a shard of %d-bit codes", d.Bits)
	}
	total, err := checkRanges(blocks, d.blocks())
	if err != nil || len(out) < total*pq.BlockSize {
		return fmt.Errorf("wasmscan: fast-scan of %d blocks into %d sums: %v", total, len(out), err)
	}
	return c.runRanges("fastscan4_ranges", blocks, maxBlocksPerCall4, func(n int) error {
		view, err := c.out(n*pq.BlockSize, 2)
		if err != nil {
			return err
		}
		for i := range n * pq.BlockSize {
			out[i] = binary.LittleEndian.Uint16(view[2*i:])
		}
		out = out[n*pq.BlockSize:]
		return nil
	})
}

func (c *kernelCall) Scan8(rows []index.Range, out []float32) error {
	d := c.s.data
	if d.Bits != 8 {
		return fmt.Errorf("wasmscan: 8-bit scan of a shard of %d-bit codes", d.Bits)
	}
	total, err := checkRanges(rows, d.N)
	if err != nil || len(out) < total {
		return fmt.Errorf("wasmscan: 8-bit scan of %d vectors into %d distances: %v", total, len(out), err)
	}
	return c.runRanges("scan8_ranges", rows, maxVectorsPerCall8, func(n int) error {
		if err := c.readFloats(out[:n]); err != nil {
			return err
		}
		out = out[n:]
		return nil
	})
}

// checkRanges returns the units the ranges cover, or an error when one lies outside 0..n.
func checkRanges(rs []index.Range, n int) (int, error) {
	total := 0
	for _, r := range rs {
		if r.Start < 0 || r.Start > r.End || r.End > n {
			return 0, fmt.Errorf("range [%d, %d) outside 0..%d", r.Start, r.End, n)
		}
		total += r.End - r.Start
	}
	return total, nil
}

// maxRangesPerCall is how many ranges one call takes (the slot's id region holds them).
const maxRangesPerCall = MaxK / 2

// runRanges calls export(codes, m, table, ranges, nranges, out) over rs in bounded calls:
// each covers at most limit units (blocks or vectors; a longer range is cut) and
// maxRangesPerCall ranges, and read(units) takes each call's output in order. The context
// is checked between calls.
func (c *kernelCall) runRanges(export string, rs []index.Range, limit int, read func(units int) error) error {
	if err := c.setTable(); err != nil {
		return err
	}
	ids, ok := c.in.Memory().Read(c.sl.ids, 4*MaxK)
	if !ok {
		return errors.New("wasmscan: scratch region out of range")
	}
	nr, units := 0, 0
	flush := func() error {
		if nr == 0 {
			return nil
		}
		if err := c.between(); err != nil {
			return err
		}
		_, err := c.in.Call(c.ctx, export, uint64(c.s.codesOff), uint64(c.s.data.M), uint64(c.sl.table),
			uint64(c.sl.ids), uint64(nr), uint64(c.sl.out))
		if err != nil {
			return err
		}
		err = read(units)
		nr, units = 0, 0
		return err
	}
	for _, r := range rs {
		for a := r.Start; a < r.End; {
			n := min(r.End-a, limit-units)
			binary.LittleEndian.PutUint32(ids[8*nr:], uint32(a))
			binary.LittleEndian.PutUint32(ids[8*nr+4:], uint32(a+n))
			nr, units, a = nr+1, units+n, a+n
			if units == limit || nr == maxRangesPerCall {
				if err := flush(); err != nil {
					return err
				}
			}
		}
	}
	return flush()
}

func (c *kernelCall) readFloats(dst []float32) error {
	view, err := c.out(len(dst), 4)
	if err != nil {
		return err
	}
	for i := range dst {
		dst[i] = math.Float32frombits(binary.LittleEndian.Uint32(view[4*i:]))
	}
	return nil
}

func (c *kernelCall) Rerank(docs []uint32, out []float32) error {
	d := c.s.data
	if d.SQ == nil {
		return errors.New("wasmscan: the shard has no 8-bit re-rank codes")
	}
	if len(out) < len(docs) {
		return fmt.Errorf("wasmscan: %d distances for %d candidates", len(out), len(docs))
	}
	if c.rq == nil {
		if c.t.L2 {
			c.rq = PrepareL2(d.SQ, c.t.Query)
		} else {
			c.rq = PrepareIP(d.SQ, c.t.Query)
		}
		view, ok := c.in.Memory().Read(c.sl.table, uint32(4*d.SQ.D))
		if !ok {
			return errors.New("wasmscan: scratch region out of range")
		}
		putFloats(view, c.rq.a)
		c.tableSet = false // the re-rank query took the table's place
	}
	for a := 0; a < len(docs); a += maxRerankPerCall {
		if err := c.between(); err != nil {
			return err
		}
		n := min(maxRerankPerCall, len(docs)-a)
		idView, ok := c.in.Memory().Read(c.sl.ids, uint32(4*n))
		if !ok {
			return errors.New("wasmscan: scratch region out of range")
		}
		for i, id := range docs[a : a+n] {
			if int(id) >= d.N {
				return fmt.Errorf("wasmscan: candidate %d outside the shard's %d vectors", id, d.N)
			}
			binary.LittleEndian.PutUint32(idView[4*i:], id)
		}
		var err error
		if c.rq.l2 {
			_, err = c.in.Call(c.ctx, "sq8_l2_dists", uint64(c.s.sqOff), uint64(d.SQ.D), uint64(c.sl.table),
				uint64(c.s.scaleOff), uint64(c.sl.ids), uint64(n), uint64(c.sl.out))
		} else {
			_, err = c.in.Call(c.ctx, "sq8_ip_dists", uint64(c.s.sqOff), uint64(d.SQ.D), uint64(c.sl.table),
				uint64(math.Float32bits(c.rq.c)), uint64(c.sl.ids), uint64(n), uint64(c.sl.out))
		}
		if err != nil {
			return err
		}
		if err := c.readFloats(out[a : a+n]); err != nil {
			return err
		}
	}
	return nil
}

var _ index.Backend = (*Backend)(nil)
