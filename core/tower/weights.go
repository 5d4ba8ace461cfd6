package tower

import (
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"

	"github.com/podsearch/podsearch/core/assets"

	"github.com/podsearch/podsearch/core/model"
)

// Float is the element type a Model computes in.
type Float interface{ float32 | float64 }

// Model dimensions of USE-lite.
const (
	VocabRows = 8002 // rows of the token embedding table
	EmbedDim  = 256  // token embedding width
	Width     = 512  // hidden width after layer 0's projection, and the output width
	FFNWidth  = 1536 // FFN inner width
	Heads     = 4    // attention heads per layer
	MaxTokens = model.MaxTokens
)

// TF.js weight name prefixes, as core/model's exporter reads them.
const (
	prefix   = "module_apply_default/Encoder_en/KonaTransformer/"
	stack    = prefix + "Encode/TransformerStack/"
	encode   = prefix + "Encode/"
	moduleKT = "module/Encoder_en/KonaTransformer/Encode/"
)

// Param is one trainable tensor: its TF.js name, shape, values and gradient.
type Param[T Float] struct {
	// Name is the TF.js weight name the exporter reads.
	Name string
	// Shape is the tensor shape (row-major).
	Shape []int
	// Data holds the values.
	Data []T
	// Grad accumulates the gradient of the loss (same length as Data).
	Grad []T
	// Embedding marks the token embedding table (its own learning rate group).
	Embedding bool
}

// Layer holds one transformer layer's parameters; In is its input width (256 or 512).
type Layer[T Float] struct {
	In             int
	QScale         T // the constant queries are multiplied by (depth^-0.5)
	LNScale, LNB   *Param[T]
	QKVW, QKVB     *Param[T]
	OutW, OutB     *Param[T]
	DenseW, DenseB *Param[T] // layer 0 only: the residual projection In -> 512
	FLNScale, FLNB *Param[T]
	W1, B1, W2, B2 *Param[T]
}

// Model is USE-lite's weights in element type T. Build one with FromTFJS or Random.
type Model[T Float] struct {
	Emb          *Param[T]
	Layers       [2]Layer[T]
	TanhW, TanhB *Param[T]
	// Constants of the graph (not trained).
	InvTimescales []T // [128]
	Eps           T   // layer norm epsilon
	L2Eps         T   // the floor under the squared norm in the final L2 normalisation
	params        []*Param[T]
}

// loader reads parameters by TF.js name, checking shapes, and remembers the first error.
type loader[T Float] struct {
	tf     map[string]model.Tensor
	err    error
	params []*Param[T]
}

func (l *loader[T]) tensor(name string, shape ...int) []float32 {
	t, ok := l.tf[name]
	n := 1
	for _, d := range shape {
		n *= d
	}
	if !ok || t.F32 == nil || t.Len() != n {
		if l.err == nil {
			if !ok {
				l.err = fmt.Errorf("tower: weight %s is missing", name)
			} else {
				l.err = fmt.Errorf("tower: weight %s has shape %v, want %v float32", name, t.Shape, shape)
			}
		}
		return make([]float32, n)
	}
	return t.F32
}

func (l *loader[T]) param(name string, shape ...int) *Param[T] {
	src := l.tensor(name, shape...)
	p := &Param[T]{Name: name, Shape: shape, Data: make([]T, len(src)), Grad: make([]T, len(src))}
	for i, v := range src {
		p.Data[i] = T(v)
	}
	l.params = append(l.params, p)
	return p
}

func (l *loader[T]) scalar(name string) T { return T(l.tensor(name)[0]) }

// FromTFJS builds the model from the TF.js weights (model.ReadTFJS), reading the same tensors
// as core/model's exporter.
func FromTFJS[T Float](tf map[string]model.Tensor) (*Model[T], error) {
	l := &loader[T]{tf: tf}
	m := &Model[T]{}
	m.Eps = l.scalar(stack + "Layer_1/TransformerLayer/FFN/layer_prepostprocess/layer_norm/Cast/x")
	m.L2Eps = l.scalar("module_apply_default/Encoder_en/hidden_layers/l2_normalize/Maximum/y")
	for _, v := range l.tensor(stack+"Layer_0/AddTimingSignal/TimingSignal/ExpandDims_1", 1, EmbedDim/2) {
		m.InvTimescales = append(m.InvTimescales, T(v))
	}
	m.Emb = l.param("module/Embeddings_en", VocabRows, EmbedDim)
	m.Emb.Embedding = true
	for li, in := range []int{EmbedDim, Width} {
		L := fmt.Sprintf("Layer_%d/TransformerLayer/", li)
		ly := Layer[T]{In: in}
		ly.QScale = l.scalar(stack + L + "MultiheadAttention/mul/y")
		ly.LNScale = l.param(encode+L+"layer_prepostprocess/layer_norm/layer_norm_scale/ConcatPartitions/concat", in)
		ly.LNB = l.param(encode+L+"layer_prepostprocess/layer_norm/layer_norm_bias/ConcatPartitions/concat", in)
		ly.QKVW = l.param(moduleKT+L+"MultiheadAttention/qkv_transform_single/kernel/part_0", in, 3*in)
		ly.QKVB = l.param(encode+L+"MultiheadAttention/qkv_transform_single/bias/ConcatPartitions/concat", 3*in)
		ly.OutW = l.param(moduleKT+L+"MultiheadAttention/output_transform_single/kernel/part_0", in, Width)
		ly.OutB = l.param(encode+L+"MultiheadAttention/output_transform_single/bias/ConcatPartitions/concat", Width)
		if in != Width {
			ly.DenseW = l.param(encode+L+"dense/kernel/ConcatPartitions/concat", in, Width)
			ly.DenseB = l.param(encode+L+"dense/bias/ConcatPartitions/concat", Width)
		}
		ly.FLNScale = l.param(encode+L+"FFN/layer_prepostprocess/layer_norm/layer_norm_scale/ConcatPartitions/concat", Width)
		ly.FLNB = l.param(encode+L+"FFN/layer_prepostprocess/layer_norm/layer_norm_bias/ConcatPartitions/concat", Width)
		ly.W1 = l.param(stack+L+"FFN/conv1/Tensordot/Reshape_1", Width, FFNWidth)
		ly.B1 = l.param(encode+L+"FFN/conv1/bias/ConcatPartitions/concat", FFNWidth)
		ly.W2 = l.param(stack+L+"FFN/conv2/Tensordot/Reshape_1", FFNWidth, Width)
		ly.B2 = l.param(encode+L+"FFN/conv2/bias/ConcatPartitions/concat", Width)
		m.Layers[li] = ly
	}
	m.TanhW = l.param("module/Encoder_en/hidden_layers/tanh_layer_0/weights", Width, Width)
	m.TanhB = l.param("module/Encoder_en/hidden_layers/tanh_layer_0/bias", Width)
	if l.err != nil {
		return nil, l.err
	}
	m.params = l.params
	return m, nil
}

// Random builds a model of USE-lite's shape with random weights (matrices scaled by
// 1/sqrt(fan-in), layer norm scales near 1), for tests; the same seed gives the same model.
func Random[T Float](seed uint64) *Model[T] {
	rng := rand.New(rand.NewPCG(seed, 0x70e7))
	m, err := FromTFJS[T](zeroTFJS())
	if err != nil {
		panic(err) // zeroTFJS holds every tensor FromTFJS reads
	}
	for _, p := range m.params {
		std := 0.1
		if p.Embedding {
			std = 0.3
		} else if len(p.Shape) == 2 {
			std = 1 / math.Sqrt(float64(p.Shape[0]))
		}
		for i := range p.Data {
			p.Data[i] = T(std * rng.NormFloat64())
		}
	}
	for _, ly := range m.Layers {
		for _, s := range []*Param[T]{ly.LNScale, ly.FLNScale} {
			for i := range s.Data {
				s.Data[i] += 1
			}
		}
	}
	return m
}

// zeroTFJS returns a TF.js map holding every tensor FromTFJS reads, zero-filled, with the
// graph constants set to USE-lite's values.
func zeroTFJS() map[string]model.Tensor {
	tf := map[string]model.Tensor{}
	put := func(name string, shape ...int) []float32 {
		n := 1
		for _, d := range shape {
			n *= d
		}
		tf[name] = model.Tensor{Shape: shape, F32: make([]float32, n)}
		return tf[name].F32
	}
	put(stack + "Layer_1/TransformerLayer/FFN/layer_prepostprocess/layer_norm/Cast/x")[0] = 1e-6
	put("module_apply_default/Encoder_en/hidden_layers/l2_normalize/Maximum/y")[0] = 1e-12
	inv := put(stack+"Layer_0/AddTimingSignal/TimingSignal/ExpandDims_1", 1, EmbedDim/2)
	for i := range inv {
		inv[i] = float32(math.Exp(-math.Log(1e4) * float64(i) / float64(len(inv)-1)))
	}
	put("module/Embeddings_en", VocabRows, EmbedDim)
	for li, in := range []int{EmbedDim, Width} {
		L := fmt.Sprintf("Layer_%d/TransformerLayer/", li)
		put(stack + L + "MultiheadAttention/mul/y")[0] = float32(1 / math.Sqrt(float64(in/Heads)))
		put(encode+L+"layer_prepostprocess/layer_norm/layer_norm_scale/ConcatPartitions/concat", in)
		put(encode+L+"layer_prepostprocess/layer_norm/layer_norm_bias/ConcatPartitions/concat", in)
		put(moduleKT+L+"MultiheadAttention/qkv_transform_single/kernel/part_0", in, 3*in)
		put(encode+L+"MultiheadAttention/qkv_transform_single/bias/ConcatPartitions/concat", 3*in)
		put(moduleKT+L+"MultiheadAttention/output_transform_single/kernel/part_0", in, Width)
		put(encode+L+"MultiheadAttention/output_transform_single/bias/ConcatPartitions/concat", Width)
		if in != Width {
			put(encode+L+"dense/kernel/ConcatPartitions/concat", in, Width)
			put(encode+L+"dense/bias/ConcatPartitions/concat", Width)
		}
		put(encode+L+"FFN/layer_prepostprocess/layer_norm/layer_norm_scale/ConcatPartitions/concat", Width)
		put(encode+L+"FFN/layer_prepostprocess/layer_norm/layer_norm_bias/ConcatPartitions/concat", Width)
		put(stack+L+"FFN/conv1/Tensordot/Reshape_1", Width, FFNWidth)
		put(encode+L+"FFN/conv1/bias/ConcatPartitions/concat", FFNWidth)
		put(stack+L+"FFN/conv2/Tensordot/Reshape_1", FFNWidth, Width)
		put(encode+L+"FFN/conv2/bias/ConcatPartitions/concat", Width)
	}
	put("module/Encoder_en/hidden_layers/tanh_layer_0/weights", Width, Width)
	put("module/Encoder_en/hidden_layers/tanh_layer_0/bias", Width)
	return tf
}

// Params lists the trainable tensors in a fixed order (the embedding table first).
func (m *Model[T]) Params() []*Param[T] { return m.params }

// ZeroGrad clears every gradient.
func (m *Model[T]) ZeroGrad() {
	for _, p := range m.params {
		clear(p.Grad)
	}
}

// TFJS returns a copy of base with every trainable tensor replaced by the model's current
// values (float32), ready for model.Export. Tensors the model does not train are shared.
func (m *Model[T]) TFJS(base map[string]model.Tensor) map[string]model.Tensor {
	out := make(map[string]model.Tensor, len(base))
	for k, v := range base {
		out[k] = v
	}
	for _, p := range m.params {
		f := make([]float32, len(p.Data))
		for i, v := range p.Data {
			f[i] = float32(v)
		}
		out[p.Name] = model.Tensor{Shape: append([]int(nil), p.Shape...), F32: f}
	}
	return out
}

// WeightsDir is where `podsearch setup` unpacks USE-lite's TF.js weights.
func WeightsDir() string { return filepath.Join(assets.Home(), "tfjs") }
