package train

import (
	"fmt"
	"math"

	"gonum.org/v1/gonum/mat"

	"github.com/podsearch/podsearch/core/adapter"
)

// model holds an adapter's trainable parameters in float64 with their gradients.
// Linear: W = I + D, params [D]. LowRank: z = x + U (Vᵀ x), params [U, V].
type model struct {
	kind      adapter.Kind
	dim, rank int
	both      bool
	params    []*mat.Dense
	grads     []*mat.Dense
}

func newModel(a *adapter.Adapter) (*model, error) {
	m := &model{kind: a.Kind, dim: a.Dim, rank: a.Rank, both: a.BothSides}
	switch a.Kind {
	case adapter.Linear:
		d := mat.NewDense(a.Dim, a.Dim, nil)
		for i := 0; i < a.Dim; i++ {
			for j := 0; j < a.Dim; j++ {
				v := float64(a.W[i*a.Dim+j])
				if i == j {
					v--
				}
				d.Set(i, j, v)
			}
		}
		m.params = []*mat.Dense{d}
	case adapter.LowRank:
		m.params = []*mat.Dense{toDense(a.U, a.Dim, a.Rank), toDense(a.V, a.Dim, a.Rank)}
	default:
		return nil, fmt.Errorf("train: unknown adapter kind %q", a.Kind)
	}
	for _, p := range m.params {
		r, c := p.Dims()
		m.grads = append(m.grads, mat.NewDense(r, c, nil))
	}
	return m, nil
}

func toDense(v []float32, r, c int) *mat.Dense {
	d := make([]float64, len(v))
	for i, x := range v {
		d[i] = float64(x)
	}
	return mat.NewDense(r, c, d)
}

// store writes the parameters back into a.
func (m *model) store(a *adapter.Adapter) {
	switch m.kind {
	case adapter.Linear:
		for i := 0; i < m.dim; i++ {
			for j := 0; j < m.dim; j++ {
				v := m.params[0].At(i, j)
				if i == j {
					v++
				}
				a.W[i*m.dim+j] = float32(v)
			}
		}
	case adapter.LowRank:
		for i, dst := range [][]float32{a.U, a.V} {
			raw := m.params[i].RawMatrix()
			for k := range dst {
				dst[k] = float32(raw.Data[k])
			}
		}
	}
}

func (m *model) zeroGrads() {
	for _, g := range m.grads {
		g.Zero()
	}
}

// forward maps the rows of X (n x dim) to Z; the returned cache feeds backward.
func (m *model) forward(x *mat.Dense) (z, h *mat.Dense) {
	n, _ := x.Dims()
	z = mat.NewDense(n, m.dim, nil)
	switch m.kind {
	case adapter.Linear:
		z.Mul(x, m.params[0].T())
	case adapter.LowRank:
		h = mat.NewDense(n, m.rank, nil)
		h.Mul(x, m.params[1])
		z.Mul(h, m.params[0].T())
	}
	z.Add(z, x)
	return z, h
}

// backward accumulates the parameter gradients for dL/dZ = dz.
func (m *model) backward(x, h, dz *mat.Dense) {
	var tmp mat.Dense
	switch m.kind {
	case adapter.Linear:
		tmp.Mul(dz.T(), x) // dD = dZᵀ X
		m.grads[0].Add(m.grads[0], &tmp)
	case adapter.LowRank:
		tmp.Mul(dz.T(), h) // dU = dZᵀ H
		m.grads[0].Add(m.grads[0], &tmp)
		var dh, dv mat.Dense
		dh.Mul(dz, m.params[0]) // dH = dZ U
		dv.Mul(x.T(), &dh)      // dV = Xᵀ dH
		m.grads[1].Add(m.grads[1], &dv)
	}
}

// normalizeRows returns the rows of z scaled to unit length and the original norms.
func normalizeRows(z *mat.Dense) (*mat.Dense, []float64) {
	n, d := z.Dims()
	u := mat.NewDense(n, d, nil)
	norms := make([]float64, n)
	for i := 0; i < n; i++ {
		row := z.RawRowView(i)
		norms[i] = math.Sqrt(dotf(row, row))
		inv := 1.0
		if norms[i] > 0 {
			inv = 1 / norms[i]
		}
		out := u.RawRowView(i)
		for j, v := range row {
			out[j] = v * inv
		}
	}
	return u, norms
}

// normalizeBackward turns dL/dU into dL/dZ for U = Z / |Z| row-wise, in place.
func normalizeBackward(u *mat.Dense, norms []float64, du *mat.Dense) {
	n, _ := u.Dims()
	for i := 0; i < n; i++ {
		ur, gr := u.RawRowView(i), du.RawRowView(i)
		p := dotf(ur, gr)
		inv := 0.0
		if norms[i] > 0 {
			inv = 1 / norms[i]
		}
		for j := range gr {
			gr[j] = (gr[j] - ur[j]*p) * inv
		}
	}
}

func dotf(a, b []float64) float64 {
	var s float64
	for i, v := range a {
		s += v * b[i]
	}
	return s
}

// batchLoss computes the MNR loss of one batch (query rows xq, episode rows xe, pair i's
// positive is episode row i) and, when grad is true, accumulates the gradients.
func (m *model) batchLoss(xq, xe *mat.Dense, scale float64, grad bool) float64 {
	zq, hq := m.forward(xq)
	uq, nq := normalizeRows(zq)
	var ue, he *mat.Dense
	var ne []float64
	if m.both {
		var ze *mat.Dense
		ze, he = m.forward(xe)
		ue, ne = normalizeRows(ze)
	} else {
		ue, _ = normalizeRows(xe)
	}
	b, _ := xq.Dims()
	var s mat.Dense
	s.Mul(uq, ue.T())
	s.Scale(scale, &s)
	loss := 0.0
	ds := mat.NewDense(b, b, nil)
	for i := 0; i < b; i++ {
		row := s.RawRowView(i)
		mx := math.Inf(-1)
		for _, v := range row {
			mx = math.Max(mx, v)
		}
		sum := 0.0
		for _, v := range row {
			sum += math.Exp(v - mx)
		}
		lse := mx + math.Log(sum)
		loss += lse - row[i]
		if grad {
			g := ds.RawRowView(i)
			for j, v := range row {
				g[j] = math.Exp(v-lse) / float64(b)
			}
			g[i] -= 1 / float64(b)
		}
	}
	loss /= float64(b)
	if !grad {
		return loss
	}
	var duq mat.Dense
	duq.Mul(ds, ue)
	duq.Scale(scale, &duq)
	normalizeBackward(uq, nq, &duq)
	m.backward(xq, hq, &duq)
	if m.both {
		var due mat.Dense
		due.Mul(ds.T(), uq)
		due.Scale(scale, &due)
		normalizeBackward(ue, ne, &due)
		m.backward(xe, he, &due)
	}
	return loss
}
