package index

import (
	"context"
	"errors"
	"log/slog"
	"runtime"

	"github.com/podsearch/podsearch/core/pq"
	"github.com/podsearch/podsearch/core/vec"
)

// Kernel runs the hot loops of a dense search over one segment's codes: the PQ scan of a
// probed list and the re-rank distances of candidates. Everything else (probing, list
// offsets, filters, tombstones, top-k) stays in the Searcher, so a Kernel that returns the
// native kernel's values bit for bit gives the same hits, ids and scores.
//
// A View without a Kernel uses the native one, which reads the memory-mapped segment in Go.
// wasm/scan provides a Kernel that runs the scan in a WebAssembly guest (wazero).
type Kernel interface {
	// Begin starts one query's use of the kernel with the query's tables. The returned
	// call serves one goroutine; End it when done.
	Begin(ctx context.Context, t *QueryTables) (KernelCall, error)
	// Reranks reports whether the kernel computes the re-rank distances of the segment's
	// re-rank codes; when false, the Searcher computes them natively.
	Reranks() bool
	// Close releases the kernel's resources; every call must have ended.
	Close(ctx context.Context) error
}

// QueryTables is one query prepared for a model's quantizers.
type QueryTables struct {
	// Query is the query vector as searched (unit length for Cosine).
	Query []float32
	// L2 is true for the L2 metric; inner products otherwise.
	L2 bool
	// LUT is the PQ table (M x 256) of 8-bit codes; QLUT the quantized table (M x 16) of
	// 4-bit codes (pq.QuantizeLUT). Only the one matching the model's PQ is set.
	LUT  []float32
	QLUT []uint8
}

// Range is the half-open interval [Start, End) of a segment's fast-scan blocks or episodes.
type Range struct{ Start, End int }

// KernelCall is one query's lease of a Kernel. It is not safe for concurrent use.
type KernelCall interface {
	// FastScan4 writes the uint16 sums pq.ScanFastScan4 computes for the segment's
	// fast-scan blocks in each range (32 per block, padding included) to out, the ranges
	// one after the other. A search passes every probed list of the segment at once.
	FastScan4(blocks []Range, out []uint16) error
	// Scan8 writes the pq.Scan8 distances of the segment's episodes in each range to out,
	// the ranges one after the other.
	Scan8(rows []Range, out []float32) error
	// Rerank writes the sq.Query distance of each episode in docs to out (only called
	// when the Kernel Reranks).
	Rerank(docs []uint32, out []float32) error
	// End releases the lease.
	End()
}

// Backend makes the Kernel of each segment an Index searches; a nil Backend uses the
// native Go kernel. Name identifies it in logs and benchmarks ("native", "wasm").
type Backend interface {
	Name() string
	NewKernel(ctx context.Context, seg *Segment) (Kernel, error)
}

// ScanCodes returns the segment's codes as its Kernel reads them: the PQ codes (for 4-bit
// PQ, the fast-scan blocks of every list, list after list; for 8-bit, Len() rows of M
// bytes) and the re-rank codes (Len() rows of Model().SQ.CodeSize() bytes, nil without
// re-rank). The slices alias the segment's memory: read only, valid until Close.
func (s *Segment) ScanCodes() (pqCodes, rerankCodes []byte) { return s.codes, s.sqCodes }

// Blocks is the number of fast-scan blocks of a 4-bit segment (lists are padded to whole
// blocks); 0 for 8-bit codes.
func (s *Segment) Blocks() int {
	if s.model.PQ.Bits != 4 {
		return 0
	}
	return int(s.blockStart[len(s.blockStart)-1])
}

// nativeKernel is the Go kernel over one segment, borrowing the query's scratch (its
// quantized table and, when the search expands it, the pair table).
type nativeKernel struct {
	seg     *Segment
	sc      *scratch
	usePair bool
	rq      rerankQuery // scalar- or transform-quantized re-rank
	q       []float32   // exact re-rank
}

func (k *nativeKernel) FastScan4(blocks []Range, out []uint16) error {
	M := k.seg.model.PQ.M
	for _, r := range blocks {
		codes := k.seg.codes[r.Start*M*16 : r.End*M*16]
		n := (r.End - r.Start) * pq.BlockSize
		var err error
		if k.usePair {
			err = k.sc.pair.Scan(codes, out[:n])
		} else {
			err = pq.ScanFastScan4(codes, M, k.sc.qlut, out[:n])
		}
		if err != nil {
			return err
		}
		out = out[n:]
	}
	return nil
}

func (k *nativeKernel) Scan8(rows []Range, out []float32) error {
	M := k.seg.model.PQ.M
	for _, r := range rows {
		n := r.End - r.Start
		if err := pq.Scan8(k.seg.codes[r.Start*M:r.End*M], M, k.sc.lut, out[:n]); err != nil {
			return err
		}
		out = out[n:]
	}
	return nil
}

func (k *nativeKernel) Rerank(docs []uint32, out []float32) error {
	m := k.seg.model
	if m.Exact {
		for i, p := range docs {
			x := vec.Row(k.seg.vectors, m.D, int(p))
			if m.Metric == L2 {
				out[i] = vec.L2Sq(k.q, x)
			} else {
				out[i] = -vec.Dot(k.q, x)
			}
		}
		return nil
	}
	cs := m.rerankCodeSize()
	touchCodes(k.seg.sqCodes, docs, cs)
	for i, p := range docs {
		out[i] = k.rq.Distance(k.seg.sqCodes[int(p)*cs : (int(p)+1)*cs])
	}
	return nil
}

// touchCodes reads one byte per cache line of each candidate's code before the distances
// are computed: the loads are independent, so the processor fetches many lines at once
// instead of waiting for each code's lines in turn inside the distance loop (a software
// prefetch; the candidates are scattered across the segment).
func touchCodes(codes []byte, docs []uint32, cs int) {
	var x byte
	for _, p := range docs {
		c := codes[int(p)*cs : (int(p)+1)*cs]
		for o := 0; o < len(c); o += 64 {
			x |= c[o]
		}
		x |= c[len(c)-1]
	}
	runtime.KeepAlive(x) // the loads are the point: keep them
}

func (k *nativeKernel) End() {}

// kernelSet holds the Kernels an Index made with its Backend, one per segment, and closes
// them with the Index.
type kernelSet struct {
	backend Backend
	of      map[*Segment]Kernel
}

// get returns seg's kernel, making it on first use; nil (native) without a Backend or when
// the Backend cannot serve seg.
func (ks *kernelSet) get(seg *Segment) Kernel {
	if ks.backend == nil {
		return nil
	}
	if k, ok := ks.of[seg]; ok {
		return k
	}
	k, err := ks.backend.NewKernel(context.Background(), seg)
	if err != nil {
		// The native kernel gives the same hits: serve with it rather than not at all (a
		// segment larger than a guest memory may hold, say), and say so.
		slog.Warn("index: scan kernel unavailable for a segment; scanning it natively",
			"backend", ks.backend.Name(), "episodes", seg.Len(), "err", err)
		k = nil
	}
	if ks.of == nil {
		ks.of = map[*Segment]Kernel{}
	}
	ks.of[seg] = k
	return k
}

func (ks *kernelSet) closeAll() error {
	var errs []error
	for seg, k := range ks.of {
		if k != nil {
			errs = append(errs, k.Close(context.Background()))
		}
		delete(ks.of, seg)
	}
	return errors.Join(errs...)
}

// AttachKernels sets the Kernel of every view from backend (nil leaves them native; so does
// a segment the backend cannot serve, with a warning) and returns a function that closes
// those kernels. It is for callers that build their own views; OpenWith does it itself.
func AttachKernels(views []View, backend Backend) (closeKernels func() error) {
	ks := &kernelSet{backend: backend}
	for i := range views {
		views[i].Kernel = ks.get(views[i].Seg)
	}
	return ks.closeAll
}
