package train

import (
	"math"

	"gonum.org/v1/gonum/mat"
)

// adamW is Adam with decoupled weight decay (Loshchilov and Hutter), as torch.optim.AdamW.
type adamW struct {
	beta1, beta2, eps, decay float64
	m, v                     [][]float64
	t                        int
}

func newAdamW(params []*mat.Dense, decay float64) *adamW {
	o := &adamW{beta1: 0.9, beta2: 0.999, eps: 1e-6, decay: decay}
	for _, p := range params {
		n := len(p.RawMatrix().Data)
		o.m = append(o.m, make([]float64, n))
		o.v = append(o.v, make([]float64, n))
	}
	return o
}

// step applies one update with learning rate lr.
func (o *adamW) step(params, grads []*mat.Dense, lr float64) {
	o.t++
	c1 := 1 - math.Pow(o.beta1, float64(o.t))
	c2 := 1 - math.Pow(o.beta2, float64(o.t))
	for k, p := range params {
		pd, gd := p.RawMatrix().Data, grads[k].RawMatrix().Data
		m, v := o.m[k], o.v[k]
		for i, g := range gd {
			pd[i] *= 1 - lr*o.decay
			m[i] = o.beta1*m[i] + (1-o.beta1)*g
			v[i] = o.beta2*v[i] + (1-o.beta2)*g*g
			pd[i] -= lr * (m[i] / c1) / (math.Sqrt(v[i]/c2) + o.eps)
		}
	}
}

// warmupLinear is the learning-rate factor at step s of total: a linear ramp from 0 over the
// first warm steps, then a linear decay to 0 (transformers' get_linear_schedule_with_warmup).
func warmupLinear(s, warm, total int) float64 {
	if s < warm {
		return float64(s) / float64(max(1, warm))
	}
	return math.Max(0, float64(total-s)/float64(max(1, total-warm)))
}
