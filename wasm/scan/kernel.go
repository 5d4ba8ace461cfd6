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

func (c *kernelCall) FastScan4(b0, b1 int, out []uint16) error {
	d := c.s.data
	if d.Bits != 4 || b0 < 0 || b1 > d.blocks() || b0 > b1 || len(out) < (b1-b0)*pq.BlockSize {
		return fmt.Errorf("wasmscan: fast-scan of blocks [%d, %d) into %d sums (shard: %d blocks of %d-bit codes)", b0, b1, len(out), d.blocks(), d.Bits)
	}
	if err := c.setTable(); err != nil {
		return err
	}
	for b := b0; b < b1; b += maxBlocksPerCall4 {
		if err := c.between(); err != nil {
			return err
		}
		nb := min(maxBlocksPerCall4, b1-b)
		_, err := c.in.Call(c.ctx, "fastscan4_sums", uint64(c.s.codesOff)+uint64(b*d.M*16), uint64(nb),
			uint64(d.M), uint64(c.sl.table), uint64(c.sl.out))
		if err != nil {
			return err
		}
		view, err := c.out(nb*pq.BlockSize, 2)
		if err != nil {
			return err
		}
		dst := out[(b-b0)*pq.BlockSize:]
		for i := range nb * pq.BlockSize {
			dst[i] = binary.LittleEndian.Uint16(view[2*i:])
		}
	}
	return nil
}

func (c *kernelCall) Scan8(a, b int, out []float32) error {
	d := c.s.data
	if d.Bits != 8 || a < 0 || b > d.N || a > b || len(out) < b-a {
		return fmt.Errorf("wasmscan: 8-bit scan of [%d, %d) into %d distances (shard: %d vectors of %d-bit codes)", a, b, len(out), d.N, d.Bits)
	}
	if err := c.setTable(); err != nil {
		return err
	}
	for i := a; i < b; i += maxVectorsPerCall8 {
		if err := c.between(); err != nil {
			return err
		}
		n := min(maxVectorsPerCall8, b-i)
		_, err := c.in.Call(c.ctx, "scan8_dists", uint64(c.s.codesOff)+uint64(i*d.M), uint64(n), uint64(d.M),
			uint64(c.sl.table), uint64(c.sl.out))
		if err != nil {
			return err
		}
		if err := c.readFloats(out[i-a : i-a+n]); err != nil {
			return err
		}
	}
	return nil
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
