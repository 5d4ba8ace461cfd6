package tower

import (
	"fmt"
	"math"
)

// layerCache keeps what one layer's backward pass needs.
type layerCache[T Float] struct {
	x          []T   // input [N, In]
	xhat, rstd []T   // attention layer norm: normalised input [N, In], 1/std [N]
	h          []T   // attention layer norm output [N, In]
	qkv        []T   // [N, 3 In] (queries not yet scaled)
	probs      [][]T // per sequence: [Heads][T][T] attention probabilities
	ctx        []T   // merged heads [N, In]
	x1         []T   // after attention and residual [N, 512]
	fxhat      []T   // FFN layer norm: normalised x1 [N, 512]
	frstd      []T   // [N]
	fh         []T   // FFN layer norm output [N, 512]
	r          []T   // ReLU output [N, 1536]
}

// Cache is the state of one forward pass over a batch, which Backward needs.
type Cache[T Float] struct {
	ids    [][]int32 // the sequences, clipped to MaxTokens
	off    []int     // row offset of sequence b in the packed rows; off[B] = N
	layers [2]layerCache[T]
	x2     []T // last layer output [N, 512]
	pooled []T // mean over valid tokens [B, 512]
	y      []T // tanh output [B, 512]
	inv    []T // per sequence 1/sqrt(max(|y|², L2Eps))
	clamp  []bool
	// Out holds the B unit-length output vectors, row-major [B, 512].
	Out []T
}

// Len is the number of sequences in the batch.
func (c *Cache[T]) Len() int { return len(c.ids) }

// Row returns output vector b.
func (c *Cache[T]) Row(b int) []T { return c.Out[b*Width : (b+1)*Width] }

// Forward runs the model on a batch of token-id sequences (each clipped to MaxTokens; ids
// must lie in [0, VocabRows)) and returns the cache holding the outputs.
func (m *Model[T]) Forward(ids [][]int32) (*Cache[T], error) {
	c := &Cache[T]{ids: make([][]int32, len(ids)), off: make([]int, len(ids)+1)}
	for b, seq := range ids {
		if len(seq) > MaxTokens {
			seq = seq[:MaxTokens]
		}
		for _, id := range seq {
			if id < 0 || id >= VocabRows {
				return nil, fmt.Errorf("tower: sequence %d has token id %d outside [0, %d)", b, id, VocabRows)
			}
		}
		c.ids[b] = seq
		c.off[b+1] = c.off[b] + len(seq)
	}
	n := c.off[len(ids)]
	// x0 = 2*E[id] + timing(pos).
	x := make([]T, n*EmbedDim)
	half := EmbedDim / 2
	for b, seq := range c.ids {
		for t, id := range seq {
			row := x[(c.off[b]+t)*EmbedDim : (c.off[b]+t+1)*EmbedDim]
			e := m.Emb.Data[int(id)*EmbedDim : (int(id)+1)*EmbedDim]
			for j := 0; j < half; j++ {
				s := float32(t) * float32(m.InvTimescales[j])
				row[j] = 2*e[j] + T(math.Sin(float64(s)))
				row[half+j] = 2*e[half+j] + T(math.Cos(float64(s)))
			}
		}
	}
	for l := range m.Layers {
		x = m.layerForward(&m.Layers[l], &c.layers[l], c, x, n)
	}
	c.x2 = x
	B := len(ids)
	c.pooled = make([]T, B*Width)
	for b := 0; b < B; b++ {
		p := c.pooled[b*Width : (b+1)*Width]
		for r := c.off[b]; r < c.off[b+1]; r++ {
			for j, v := range x[r*Width : (r+1)*Width] {
				p[j] += v
			}
		}
		cnt := T(max(1, c.off[b+1]-c.off[b]))
		for j := range p {
			p[j] /= cnt
		}
	}
	c.y = make([]T, B*Width)
	for b := 0; b < B; b++ {
		copy(c.y[b*Width:(b+1)*Width], m.TanhB.Data)
	}
	matmul(false, false, B, Width, Width, c.pooled, m.TanhW.Data, 1, c.y)
	c.Out = make([]T, B*Width)
	c.inv = make([]T, B)
	c.clamp = make([]bool, B)
	for b := 0; b < B; b++ {
		y := c.y[b*Width : (b+1)*Width]
		ss := 0.0
		for j, v := range y {
			y[j] = T(math.Tanh(float64(v)))
			ss += float64(y[j]) * float64(y[j])
		}
		if ss < float64(m.L2Eps) {
			ss, c.clamp[b] = float64(m.L2Eps), true
		}
		c.inv[b] = T(1 / math.Sqrt(ss))
		o := c.Out[b*Width : (b+1)*Width]
		for j, v := range y {
			o[j] = v * c.inv[b]
		}
	}
	return c, nil
}

// layerNorm writes y = (x - mean) / sqrt(var + eps) * scale + bias row-wise, keeping the
// normalised rows and 1/std for the backward pass.
func layerNorm[T Float](x []T, width int, scale, bias []T, eps T) (y, xhat, rstd []T) {
	n := len(x) / width
	y, xhat, rstd = make([]T, len(x)), make([]T, len(x)), make([]T, n)
	for r := 0; r < n; r++ {
		row := x[r*width : (r+1)*width]
		mean := 0.0
		for _, v := range row {
			mean += float64(v)
		}
		mean /= float64(width)
		vr := 0.0
		for _, v := range row {
			d := float64(v) - mean
			vr += d * d
		}
		vr /= float64(width)
		rs := 1 / math.Sqrt(vr+float64(eps))
		rstd[r] = T(rs)
		xh, yr := xhat[r*width:(r+1)*width], y[r*width:(r+1)*width]
		for j, v := range row {
			xh[j] = T((float64(v) - mean) * rs)
			yr[j] = xh[j]*scale[j] + bias[j]
		}
	}
	return y, xhat, rstd
}

// layerForward runs one transformer layer on the packed rows x [n, In] and returns [n, 512].
func (m *Model[T]) layerForward(ly *Layer[T], lc *layerCache[T], c *Cache[T], x []T, n int) []T {
	in := ly.In
	lc.x = x
	lc.h, lc.xhat, lc.rstd = layerNorm(x, in, ly.LNScale.Data, ly.LNB.Data, m.Eps)
	lc.qkv = make([]T, n*3*in)
	matmul(false, false, n, 3*in, in, lc.h, ly.QKVW.Data, 0, lc.qkv)
	addBias(lc.qkv, ly.QKVB.Data)
	lc.ctx = make([]T, n*in)
	lc.probs = make([][]T, len(c.ids))
	depth := in / Heads
	parallelFor(len(c.ids), func(b int) {
		o, t := c.off[b], c.off[b+1]-c.off[b]
		if t == 0 {
			return
		}
		probs := make([]T, Heads*t*t)
		lc.probs[b] = probs
		for hd := 0; hd < Heads; hd++ {
			q := lc.qkv[o*3*in+hd*depth:]
			k := lc.qkv[o*3*in+in+hd*depth:]
			v := lc.qkv[o*3*in+2*in+hd*depth:]
			p := probs[hd*t*t : (hd+1)*t*t]
			// logits = (q * scale) kᵀ
			gemm(false, true, t, t, depth, q, 3*in, k, 3*in, 0, p, t)
			for i := 0; i < t; i++ {
				row := p[i*t : (i+1)*t]
				mx := math.Inf(-1)
				for j := range row {
					row[j] *= ly.QScale
					mx = math.Max(mx, float64(row[j]))
				}
				sum := 0.0
				for j, v := range row {
					e := math.Exp(float64(v) - mx)
					row[j] = T(e)
					sum += e
				}
				for j := range row {
					row[j] = T(float64(row[j]) / sum)
				}
			}
			gemm(false, false, t, depth, t, p, t, v, 3*in, 0, lc.ctx[o*in+hd*depth:], in)
		}
	})
	x1 := make([]T, n*Width)
	if ly.DenseW != nil {
		matmul(false, false, n, Width, in, x, ly.DenseW.Data, 0, x1)
		addBias(x1, ly.DenseB.Data)
	} else {
		copy(x1, x)
	}
	matmul(false, false, n, Width, in, lc.ctx, ly.OutW.Data, 1, x1)
	addBias(x1, ly.OutB.Data)
	lc.x1 = x1
	lc.fh, lc.fxhat, lc.frstd = layerNorm(x1, Width, ly.FLNScale.Data, ly.FLNB.Data, m.Eps)
	lc.r = make([]T, n*FFNWidth)
	matmul(false, false, n, FFNWidth, Width, lc.fh, ly.W1.Data, 0, lc.r)
	addBias(lc.r, ly.B1.Data)
	for i, v := range lc.r {
		if v < 0 {
			lc.r[i] = 0
		}
	}
	x2 := make([]T, n*Width)
	copy(x2, x1)
	matmul(false, false, n, Width, FFNWidth, lc.r, ly.W2.Data, 1, x2)
	addBias(x2, ly.B2.Data)
	return x2
}
