package tower

import "fmt"

// Backward adds to every parameter's Grad the gradient of a loss whose gradient with
// respect to the outputs c.Out is dOut ([B, 512], row-major). The cache must come from
// m.Forward with the current weights.
func (m *Model[T]) Backward(c *Cache[T], dOut []T) error {
	B := len(c.ids)
	if len(dOut) != B*Width {
		return fmt.Errorf("tower: output gradient of length %d, want %d", len(dOut), B*Width)
	}
	// L2 normalisation: out = y * inv, inv = 1/sqrt(max(|y|², eps)).
	dz := make([]T, B*Width)
	for b := 0; b < B; b++ {
		o, g := c.Out[b*Width:(b+1)*Width], dOut[b*Width:(b+1)*Width]
		y, d := c.y[b*Width:(b+1)*Width], dz[b*Width:(b+1)*Width]
		var dot T
		if !c.clamp[b] {
			for j, v := range o {
				dot += v * g[j]
			}
		}
		for j := range d {
			dy := (g[j] - o[j]*dot) * c.inv[b]
			d[j] = dy * (1 - y[j]*y[j]) // through tanh
		}
	}
	// Dense tanh layer: y = tanh(pooled W + b).
	matmul(true, false, Width, Width, B, c.pooled, dz, 1, m.TanhW.Grad)
	sumRows(dz, m.TanhB.Grad)
	dPooled := make([]T, B*Width)
	matmul(false, true, B, Width, Width, dz, m.TanhW.Data, 0, dPooled)
	// Mean pooling.
	n := c.off[B]
	dx := make([]T, n*Width)
	for b := 0; b < B; b++ {
		cnt := T(max(1, c.off[b+1]-c.off[b]))
		dp := dPooled[b*Width : (b+1)*Width]
		for r := c.off[b]; r < c.off[b+1]; r++ {
			row := dx[r*Width : (r+1)*Width]
			for j, v := range dp {
				row[j] = v / cnt
			}
		}
	}
	for l := len(m.Layers) - 1; l >= 0; l-- {
		dx = m.layerBackward(&m.Layers[l], &c.layers[l], c, dx, n)
	}
	// x0 = 2*E[id] + timing: the embedding rows receive twice the gradient.
	for b, seq := range c.ids {
		for t, id := range seq {
			g := m.Emb.Grad[int(id)*EmbedDim : (int(id)+1)*EmbedDim]
			for j, v := range dx[(c.off[b]+t)*EmbedDim : (c.off[b]+t+1)*EmbedDim] {
				g[j] += 2 * v
			}
		}
	}
	return nil
}

// layerNormBackward returns dL/dx for y = xhat*scale + bias given dL/dy, adding the scale
// and bias gradients.
func layerNormBackward[T Float](dy, xhat, rstd []T, width int, scale, dScale, dBias []T) []T {
	n := len(dy) / width
	dx := make([]T, len(dy))
	for r := 0; r < n; r++ {
		g, xh, d := dy[r*width:(r+1)*width], xhat[r*width:(r+1)*width], dx[r*width:(r+1)*width]
		mg, mgx := 0.0, 0.0
		for j, v := range g {
			dScale[j] += v * xh[j]
			dBias[j] += v
			dh := float64(v * scale[j])
			mg += dh
			mgx += dh * float64(xh[j])
		}
		mg /= float64(width)
		mgx /= float64(width)
		rs := float64(rstd[r])
		for j, v := range g {
			d[j] = T(rs * (float64(v*scale[j]) - mg - float64(xh[j])*mgx))
		}
	}
	return dx
}

// layerBackward takes dL/d(layer output) [n, 512] and returns dL/d(layer input) [n, In],
// adding the layer's parameter gradients.
func (m *Model[T]) layerBackward(ly *Layer[T], lc *layerCache[T], c *Cache[T], dx2 []T, n int) []T {
	in := ly.In
	// FFN: x2 = x1 + relu(fh W1 + b1) W2 + b2.
	matmul(true, false, FFNWidth, Width, n, lc.r, dx2, 1, ly.W2.Grad)
	sumRows(dx2, ly.B2.Grad)
	dr := make([]T, n*FFNWidth)
	matmul(false, true, n, FFNWidth, Width, dx2, ly.W2.Data, 0, dr)
	for i, v := range lc.r {
		if v <= 0 {
			dr[i] = 0
		}
	}
	matmul(true, false, Width, FFNWidth, n, lc.fh, dr, 1, ly.W1.Grad)
	sumRows(dr, ly.B1.Grad)
	dfh := make([]T, n*Width)
	matmul(false, true, n, Width, FFNWidth, dr, ly.W1.Data, 0, dfh)
	dx1 := layerNormBackward(dfh, lc.fxhat, lc.frstd, Width, ly.FLNScale.Data, ly.FLNScale.Grad, ly.FLNB.Grad)
	for i, v := range dx2 {
		dx1[i] += v
	}
	// x1 = ctx Wout + bout + residual(x).
	matmul(true, false, in, Width, n, lc.ctx, dx1, 1, ly.OutW.Grad)
	sumRows(dx1, ly.OutB.Grad)
	dctx := make([]T, n*in)
	matmul(false, true, n, in, Width, dx1, ly.OutW.Data, 0, dctx)
	dx := make([]T, n*in)
	if ly.DenseW != nil {
		matmul(true, false, in, Width, n, lc.x, dx1, 1, ly.DenseW.Grad)
		sumRows(dx1, ly.DenseB.Grad)
		matmul(false, true, n, in, Width, dx1, ly.DenseW.Data, 0, dx)
	} else {
		copy(dx, dx1)
	}
	// Attention, per sequence and head: logits = s q kᵀ, P = softmax(logits), ctx = P v.
	dqkv := make([]T, n*3*in)
	depth := in / Heads
	parallelFor(len(c.ids), func(b int) {
		o, t := c.off[b], c.off[b+1]-c.off[b]
		if t == 0 {
			return
		}
		dp := make([]T, t*t)
		for hd := 0; hd < Heads; hd++ {
			p := lc.probs[b][hd*t*t : (hd+1)*t*t]
			q := lc.qkv[o*3*in+hd*depth:]
			k := lc.qkv[o*3*in+in+hd*depth:]
			v := lc.qkv[o*3*in+2*in+hd*depth:]
			dctxH := dctx[o*in+hd*depth:]
			dq := dqkv[o*3*in+hd*depth:]
			dk := dqkv[o*3*in+in+hd*depth:]
			dv := dqkv[o*3*in+2*in+hd*depth:]
			// dv = Pᵀ dctx; dP = dctx vᵀ.
			gemm(true, false, t, depth, t, p, t, dctxH, in, 0, dv, 3*in)
			gemm(false, true, t, t, depth, dctxH, in, v, 3*in, 0, dp, t)
			// dlogits = P ∘ (dP - rowsum(dP ∘ P)), times the query scale.
			for i := 0; i < t; i++ {
				pr, dr := p[i*t:(i+1)*t], dp[i*t:(i+1)*t]
				var s T
				for j, pv := range pr {
					s += pv * dr[j]
				}
				for j, pv := range pr {
					dr[j] = pv * (dr[j] - s) * ly.QScale
				}
			}
			// dq = dlogits k; dk = dlogitsᵀ q.
			gemm(false, false, t, depth, t, dp, t, k, 3*in, 0, dq, 3*in)
			gemm(true, false, t, depth, t, dp, t, q, 3*in, 0, dk, 3*in)
		}
	})
	// qkv = h Wqkv + b; h = LN(x).
	matmul(true, false, in, 3*in, n, lc.h, dqkv, 1, ly.QKVW.Grad)
	sumRows(dqkv, ly.QKVB.Grad)
	dh := make([]T, n*in)
	matmul(false, true, n, in, 3*in, dqkv, ly.QKVW.Data, 0, dh)
	dxa := layerNormBackward(dh, lc.xhat, lc.rstd, in, ly.LNScale.Data, ly.LNScale.Grad, ly.LNB.Grad)
	for i, v := range dxa {
		dx[i] += v
	}
	return dx
}
