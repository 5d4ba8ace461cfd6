package evaluate

import (
	"container/heap"
	"fmt"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas32"
)

// Matrix is a row-major block of vectors of one width.
type Matrix struct {
	Rows, Dim int
	Data      []float32
}

// Pack copies vectors into a Matrix; every vector must have the same width.
func Pack(vs [][]float32) (Matrix, error) {
	if len(vs) == 0 {
		return Matrix{}, nil
	}
	d := len(vs[0])
	m := Matrix{Rows: len(vs), Dim: d, Data: make([]float32, 0, len(vs)*d)}
	for i, v := range vs {
		if len(v) != d {
			return Matrix{}, fmt.Errorf("evaluate: vector %d has width %d, want %d", i, len(v), d)
		}
		m.Data = append(m.Data, v...)
	}
	return m, nil
}

// searchChunk is how many queries are scored against all documents at once.
const searchChunk = 256

// Search is exact maximum-inner-product search: for each query, the indices of the k
// documents with the highest dot product, best first (ties go to the lower index). With unit
// vectors this is cosine similarity.
func Search(queries, docs [][]float32, k int) ([][]int, error) {
	out := make([][]int, len(queries))
	if k <= 0 {
		return out, nil
	}
	err := scoreAll(queries, docs, func(qi int, scores []float32) {
		out[qi] = topK(scores, min(k, len(scores)))
	})
	return out, err
}

// scoreAll calls visit with every query's dot products against all documents, a chunk of
// queries at a time (scores is reused between calls).
func scoreAll(queries, docs [][]float32, visit func(qi int, scores []float32)) error {
	qm, err := Pack(queries)
	if err != nil {
		return err
	}
	dm, err := Pack(docs)
	if err != nil {
		return err
	}
	if len(queries) == 0 || len(docs) == 0 {
		return nil
	}
	if qm.Dim != dm.Dim {
		return fmt.Errorf("evaluate: queries have width %d, documents %d", qm.Dim, dm.Dim)
	}
	scores := make([]float32, searchChunk*dm.Rows)
	for lo := 0; lo < qm.Rows; lo += searchChunk {
		n := min(searchChunk, qm.Rows-lo)
		c := blas32.General{Rows: n, Cols: dm.Rows, Stride: dm.Rows, Data: scores[:n*dm.Rows]}
		a := blas32.General{Rows: n, Cols: qm.Dim, Stride: qm.Dim, Data: qm.Data[lo*qm.Dim : (lo+n)*qm.Dim]}
		b := blas32.General{Rows: dm.Rows, Cols: dm.Dim, Stride: dm.Dim, Data: dm.Data}
		blas32.Gemm(blas.NoTrans, blas.Trans, 1, a, b, 0, c)
		for i := 0; i < n; i++ {
			visit(lo+i, c.Data[i*dm.Rows:(i+1)*dm.Rows])
		}
	}
	return nil
}

// topK returns the indices of the k largest scores, best first, ties to the lower index.
func topK(scores []float32, k int) []int {
	if k <= 0 {
		return nil
	}
	h := make(minHeap, 0, k)
	for i, s := range scores {
		if len(h) < k {
			heap.Push(&h, scored{i, s})
			continue
		}
		if better(scored{i, s}, h[0]) {
			h[0] = scored{i, s}
			heap.Fix(&h, 0)
		}
	}
	out := make([]int, len(h))
	for j := len(h) - 1; j >= 0; j-- {
		out[j] = heap.Pop(&h).(scored).i
	}
	return out
}

type scored struct {
	i int
	s float32
}

// better orders by score, then by lower index.
func better(a, b scored) bool { return a.s > b.s || (a.s == b.s && a.i < b.i) }

// minHeap keeps the worst of the current top k at the root.
type minHeap []scored

func (h minHeap) Len() int           { return len(h) }
func (h minHeap) Less(i, j int) bool { return better(h[j], h[i]) }
func (h minHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *minHeap) Push(x any)        { *h = append(*h, x.(scored)) }
func (h *minHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}
