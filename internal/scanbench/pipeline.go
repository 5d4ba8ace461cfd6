package scanbench

import (
	"context"
	"errors"
	"fmt"

	"github.com/podsearch/podsearch/core/pq"
	"github.com/podsearch/podsearch/core/sq"
	wasmscan "github.com/podsearch/podsearch/wasm/scan"
	"github.com/podsearch/podsearch/wasm/scanref"
)

// Result is one hit: a vector's position in the shard and its distance.
type Result = wasmscan.Result

// Metric is the distance a search ranks by.
type Metric int

const (
	// InnerProduct ranks by -<query, vector> (cosine on unit vectors).
	InnerProduct Metric = iota
	// L2 ranks by the squared Euclidean distance.
	L2
)

// Tables is one query prepared for a shard's quantizers: the PQ table (and its quantized
// form for 4-bit codes) and the re-rank query for both the guest and the native path.
type Tables struct {
	LUT  []float32
	QLUT []uint8
	// Rerank and Native are the same re-rank query for the guest and for sq; nil without SQ.
	Rerank *wasmscan.RerankQuery
	Native *sq.Query
}

// Prepare builds a query's tables. sqq may be nil (no re-rank).
func Prepare(pqq *pq.Quantizer, sqq *sq.Quantizer, metric Metric, query []float32) *Tables {
	t := &Tables{LUT: make([]float32, pqq.M*pqq.Ksub())}
	if metric == L2 {
		pqq.L2LUT(query, t.LUT)
	} else {
		pqq.InnerProductLUT(query, -1, t.LUT)
	}
	if pqq.Bits == 4 {
		t.QLUT = make([]uint8, pqq.M*16)
		pq.QuantizeLUT(t.LUT, pqq.M, 16, t.QLUT)
	}
	if sqq != nil {
		if metric == L2 {
			t.Rerank, t.Native = wasmscan.PrepareL2(sqq, query), sqq.PrepareL2(query)
		} else {
			t.Rerank, t.Native = wasmscan.PrepareIP(sqq, query), sqq.PrepareIP(query)
		}
	}
	return t
}

// Search scans the shard for its cands best PQ candidates and, when the shard has re-rank
// codes, re-ranks them to the k best; without re-rank codes it returns the k best PQ
// candidates. data is what sh was built from. It is the C guest's side of NativeSearch:
// the same results, bit for bit.
func Search(ctx context.Context, sh *wasmscan.Shard, data *wasmscan.Data, t *Tables, k, cands int) ([]Result, error) {
	if err := checkK(k); err != nil {
		return nil, err
	}
	if data.SQ == nil || cands < k {
		cands = k
	}
	if err := checkK(cands); err != nil {
		return nil, err
	}
	var out []Result
	var err error
	if data.Bits == 4 {
		out, err = sh.FastScan4(ctx, t.QLUT, cands)
	} else {
		out, err = sh.Scan8(ctx, t.LUT, cands)
	}
	if err != nil || data.SQ == nil {
		return out, err
	}
	if t.Rerank == nil {
		return nil, errors.New("scanbench: tables prepared without the re-rank quantizer")
	}
	return sh.Rerank(ctx, t.Rerank, resultIDs(out), k)
}

// resultIDs are the positions of rs.
func resultIDs(rs []Result) []uint32 {
	ids := make([]uint32, len(rs))
	for i, r := range rs {
		ids[i] = r.ID
	}
	return ids
}

// checkK refuses a k the kernels cannot return.
func checkK(k int) error {
	if k <= 0 || k > wasmscan.MaxK {
		return fmt.Errorf("scanbench: k=%d outside 1..%d", k, wasmscan.MaxK)
	}
	return nil
}

// NativeSearch is Search on the native Go path (scanref over data in Go memory): the
// reference the guest must equal, and the "native" side of benchmarks.
func NativeSearch(sc *scanref.Scanner, data *wasmscan.Data, t *Tables, k, cands int) ([]Result, error) {
	if data.SQ == nil || cands < k {
		cands = k
	}
	var out []Result
	var err error
	switch data.Bits {
	case 4:
		out, err = sc.FastScan4(data.Codes, data.N, data.M, t.QLUT, cands, 0)
	case 8:
		out, err = sc.Scan8(data.Codes, data.N, data.M, t.LUT, cands, 0)
	default:
		err = fmt.Errorf("scanbench: %d-bit codes", data.Bits)
	}
	if err != nil || data.SQ == nil {
		return out, err
	}
	return sc.Rerank(data.SQCodes, data.SQ.CodeSize(), t.Native, resultIDs(out), k)
}
