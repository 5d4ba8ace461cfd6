package index

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"sync"

	"github.com/podsearch/podsearch/core/kmeans"
	"github.com/podsearch/podsearch/core/pq"
	"github.com/podsearch/podsearch/core/sq"
	"github.com/podsearch/podsearch/core/tq"
	"github.com/podsearch/podsearch/core/vec"
)

// rerankQuery scores re-rank codes for one query (*sq.Query, *tq.Query).
type rerankQuery interface {
	Distance(code []byte) float32
}

// rerankCodeSize is the bytes of one re-rank code (0 without codes: none or exact).
func (m *Model) rerankCodeSize() int {
	switch {
	case m.SQ != nil:
		return m.SQ.CodeSize()
	case m.TQ != nil:
		return m.TQ.CodeSize()
	}
	return 0
}

// encodeRerank writes x's re-rank code (the model must have re-rank codes).
func (m *Model) encodeRerank(x []float32, code []byte) {
	if m.SQ != nil {
		m.SQ.Encode(x, code)
		return
	}
	m.TQ.Encode(x, code)
}

// prepareRerank prepares q (as searched) for the model's re-rank codes, reusing the
// buffers of prev (the searcher's previous query for this model, or nil) where it can.
func (m *Model) prepareRerank(q []float32, prev rerankQuery) rerankQuery {
	switch {
	case m.SQ != nil && m.Metric == L2:
		return m.SQ.PrepareL2(q)
	case m.SQ != nil:
		return m.SQ.PrepareIP(q)
	case m.Metric == L2:
		return m.TQ.PrepareL2(q)
	}
	p, _ := prev.(*tq.Query)
	return m.TQ.PrepareIPTo(p, q)
}

// Model is what training learns and every segment of an index shares: the coarse
// quantizer (IVF centroids), the product quantizer of residuals, and the scalar quantizer
// used for re-ranking. Encoding a vector depends only on the Model, so segments encoded
// with the same Model can be searched together and merged without re-encoding.
type Model struct {
	// Metric is the similarity; D the vector width.
	Metric Metric
	D      int
	// Coarse holds NList centroids, row-major.
	Coarse []float32
	NList  int
	// PQ encodes residuals (vector minus its list's centroid).
	PQ *pq.Quantizer
	// SQ encodes the (normalised, for cosine) vectors for re-ranking; nil for none.
	SQ *sq.Quantizer
	// TQ encodes the (normalised, for cosine) vectors for re-ranking with a transform
	// quantizer (Config.RerankBytes); nil for none. At most one of SQ, TQ and Exact is set.
	TQ *tq.Quantizer
	// Exact re-ranks with the float32 vectors (normalised, for cosine) that segments then
	// store; SQ is nil.
	Exact bool
	// Fingerprint names the encoder model the vectors come from.
	Fingerprint string

	coarseOnce  sync.Once
	coarseNorms []float32     // |centroid|^2, for L2 probing
	coarseRows  vec.QueryRows // Coarse as queries read it (half precision where the CPU converts it)
}

// coarseTables computes, once, |c|^2 of every coarse centroid and the centroids as queries
// read them (vec.QueryRows: half precision where the CPU converts it, as for the transform
// quantizer's rotation).
func (m *Model) coarseTables() {
	m.coarseOnce.Do(func() {
		m.coarseNorms = make([]float32, m.NList)
		for l := range m.coarseNorms {
			c := vec.Row(m.Coarse, m.D, l)
			m.coarseNorms[l] = vec.Dot(c, c)
		}
		m.coarseRows = vec.NewQueryRows(m.Coarse, m.D)
	})
}

// centroidProducts writes <q, centroid l> of every list l into qc (length NList).
func (m *Model) centroidProducts(q, qc []float32) {
	m.coarseTables()
	m.coarseRows.MulVec(q, qc[:m.NList])
}

// listDistance is list l's coarse distance to a query with <q, centroid l> = qcl (after
// centroidProducts): -<q, c> for inner products, |c|^2 - 2<q, c> (|q - c|^2 less |q|^2)
// for L2.
func (m *Model) listDistance(l int, qcl float32) float32 {
	if m.Metric == L2 {
		return m.coarseNorms[l] - 2*qcl
	}
	return -qcl
}

// Train learns a Model from the n = len(vectors)/d row vectors (a sample of at most
// cfg.TrainSize of them).
func Train(vectors []float32, d int, cfg Config) (*Model, error) {
	if d <= 0 || len(vectors) == 0 || len(vectors)%d != 0 {
		return nil, fmt.Errorf("index: %d values are not a positive number of %d-d vectors", len(vectors), d)
	}
	n := len(vectors) / d
	cfg, err := cfg.withDefaults(n, d)
	if err != nil {
		return nil, err
	}
	if err := checkFinite(vectors); err != nil {
		return nil, err
	}
	train := trainingSample(vectors, d, cfg)
	nt := len(train) / d
	opts := kmeans.Options{Iters: cfg.Iters, Seed: cfg.Seed}
	coarse, err := kmeans.Train(train, d, cfg.NList, opts)
	if err != nil {
		return nil, fmt.Errorf("index: coarse quantizer: %w", err)
	}
	m := &Model{Metric: cfg.Metric, D: d, Coarse: coarse, NList: cfg.NList, Fingerprint: cfg.Fingerprint}
	assign := make([]int32, nt)
	kmeans.Assign(train, d, coarse, assign, make([]float32, nt), runtime.GOMAXPROCS(0))
	resid := make([]float32, len(train))
	for i := 0; i < nt; i++ {
		vec.Sub(vec.Row(resid, d, i), vec.Row(train, d, i), vec.Row(coarse, d, int(assign[i])))
	}
	if nt < 1<<cfg.Bits {
		return nil, fmt.Errorf("index: %d training vectors, PQ with %d bits needs at least %d", nt, cfg.Bits, 1<<cfg.Bits)
	}
	if m.PQ, err = pq.Train(resid, d, cfg.M, cfg.Bits, opts); err != nil {
		return nil, fmt.Errorf("index: product quantizer: %w", err)
	}
	if err := m.trainRerank(train, cfg); err != nil {
		return nil, err
	}
	return m, nil
}

// trainingSample returns a copy of at most cfg.TrainSize of the rows of vectors (a random
// sample for cfg.Seed), normalised for the cosine metric.
func trainingSample(vectors []float32, d int, cfg Config) []float32 {
	n := len(vectors) / d
	var train []float32
	if n > cfg.TrainSize {
		rng := rand.New(rand.NewPCG(cfg.Seed, 0x7472616e))
		perm := rng.Perm(n)[:cfg.TrainSize]
		train = make([]float32, 0, cfg.TrainSize*d)
		for _, i := range perm {
			train = append(train, vec.Row(vectors, d, i)...)
		}
	} else {
		train = append([]float32(nil), vectors...)
	}
	if cfg.Metric == Cosine {
		normalizeRows(train, d)
	}
	return train
}

// trainRerank sets m's re-rank codes to cfg.Rerank (cfg.RerankBytes for TQ), trained on
// train (rows of m.D, normalised as the metric wants), and clears any others.
func (m *Model) trainRerank(train []float32, cfg Config) error {
	m.SQ, m.TQ, m.Exact = nil, nil, false
	var err error
	switch cfg.Rerank {
	case RerankTQ:
		if m.TQ, err = tq.Train(train, m.D, cfg.RerankBytes); err != nil {
			return fmt.Errorf("index: re-rank quantizer: %w", err)
		}
	case RerankFlat:
		m.Exact = true
	case RerankSQ8, RerankSQ4:
		bits := 8
		if cfg.Rerank == RerankSQ4 {
			bits = 4
		}
		if m.SQ, err = sq.Train(train, m.D, bits); err != nil {
			return fmt.Errorf("index: re-rank quantizer: %w", err)
		}
	}
	return nil
}

// WithRerank returns a copy of m with other re-rank codes (r: RerankSQ8, RerankSQ4,
// RerankTQ of bytes bytes (0: DefaultRerankBytes), RerankFlat or RerankNone) trained on
// vectors (rows of m.D; a sample of at most 100,000 for seed); the coarse lists and the PQ
// stay, so an episode falls in the same lists and spill assignments still hold. A build
// steps up to finer codes this way when its operating point misses the target recall.
func (m *Model) WithRerank(vectors []float32, r Rerank, bytes int, seed uint64) (*Model, error) {
	if len(vectors) == 0 || len(vectors)%m.D != 0 {
		return nil, fmt.Errorf("index: %d values are not a positive number of %d-d vectors", len(vectors), m.D)
	}
	cfg, err := Config{Metric: m.Metric, NList: m.NList, M: m.PQ.M, Bits: m.PQ.Bits, Rerank: r, RerankBytes: bytes,
		Seed: seed, Fingerprint: m.Fingerprint}.withDefaults(len(vectors)/m.D, m.D)
	if err != nil {
		return nil, err
	}
	out := &Model{Metric: m.Metric, D: m.D, Coarse: m.Coarse, NList: m.NList, PQ: m.PQ, Fingerprint: m.Fingerprint}
	if err := out.trainRerank(trainingSample(vectors, m.D, cfg), cfg); err != nil {
		return nil, err
	}
	return out, nil
}

func checkFinite(v []float32) error {
	for i, x := range v {
		if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
			return fmt.Errorf("index: value %d of the vectors is %v", i, x)
		}
	}
	return nil
}

func normalizeRows(data []float32, d int) {
	for i := 0; i < len(data)/d; i++ {
		vec.Normalize(vec.Row(data, d, i))
	}
}

// exactBits is RerankBits of a model that re-ranks with float32 vectors, tqBits that of one
// that re-ranks with transform-quantized codes.
const (
	exactBits = 32
	tqBits    = 1
)

// RerankBits names the re-rank codes: 8 or 4 (scalar-quantized bits per dimension), 32
// (exact float32 vectors), 1 (transform-quantized codes of TQ.CodeSize() bytes), or 0 when
// the model has none.
func (m *Model) RerankBits() int {
	if m.Exact {
		return exactBits
	}
	if m.TQ != nil {
		return tqBits
	}
	if m.SQ == nil {
		return 0
	}
	return m.SQ.Bits
}

// BytesPerVector is the memory one vector's codes take in a segment: the PQ code, the
// re-rank code (4*D for exact float32 vectors) and, for L2, a float32 norm (metadata and
// ids not counted).
func (m *Model) BytesPerVector() float64 {
	b := float64(m.PQ.M*m.PQ.Bits) / 8
	if m.SQ != nil {
		b += float64(m.SQ.CodeSize())
	}
	if m.Exact {
		b += float64(4 * m.D)
	}
	if m.TQ != nil {
		b += float64(m.TQ.CodeSize())
	}
	if m.Metric == L2 {
		b += 4
	}
	return b
}

// ID is a short hash of the model's parameters: segments of one index must share it.
func (m *Model) ID() string {
	h := sha256.New()
	var hdr [24]byte
	binary.LittleEndian.PutUint32(hdr[0:], uint32(m.Metric))
	binary.LittleEndian.PutUint32(hdr[4:], uint32(m.D))
	binary.LittleEndian.PutUint32(hdr[8:], uint32(m.NList))
	binary.LittleEndian.PutUint32(hdr[12:], uint32(m.PQ.M))
	binary.LittleEndian.PutUint32(hdr[16:], uint32(m.PQ.Bits))
	binary.LittleEndian.PutUint32(hdr[20:], uint32(m.RerankBits()))
	h.Write(hdr[:])
	h.Write([]byte(m.Fingerprint))
	h.Write(f32Bytes(m.Coarse))
	h.Write(f32Bytes(m.PQ.Centroids))
	if m.SQ != nil {
		h.Write(f32Bytes(m.SQ.Min))
		h.Write(f32Bytes(m.SQ.Scale))
	}
	if m.TQ != nil {
		b, _ := m.TQ.MarshalBinary()
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil)[:8])
}

// Config is the model's shape as a Config (metric, lists, PQ, re-rank, fingerprint; the
// training settings are not kept): training with it again gives a model of the same shape.
func (m *Model) Config() Config {
	c := Config{Metric: m.Metric, NList: m.NList, M: m.PQ.M, Bits: m.PQ.Bits, Rerank: RerankNone, Fingerprint: m.Fingerprint}
	switch {
	case m.SQ != nil && m.SQ.Bits == 4:
		c.Rerank = RerankSQ4
	case m.SQ != nil:
		c.Rerank = RerankSQ8
	case m.Exact:
		c.Rerank = RerankFlat
	case m.TQ != nil:
		c.Rerank, c.RerankBytes = RerankTQ, m.TQ.CodeSize()
	}
	return c
}

// String describes the model's shape, e.g. "IVF64,PQ32x4fs,SQ8,cosine": its Config's name,
// which ParseConfig reads.
func (m *Model) String() string { return m.Config().String() }
