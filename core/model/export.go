package model

import (
	"fmt"

	"github.com/advancedclimatesystems/gonnx/onnx"
	"google.golang.org/protobuf/proto"
)

// Graph input and output names of the exported model.
const (
	InputIDs      = "input_ids"
	InputMask     = "attention_mask"
	OutputName    = "embedding"
	MaxTokens     = 128
	EmbeddingDim  = 512
	opsetVersion  = 17
	onnxIRVersion = 8
)

const (
	prefix   = "module_apply_default/Encoder_en/KonaTransformer/"
	stack    = prefix + "Encode/TransformerStack/"
	encode   = prefix + "Encode/"
	moduleKT = "module/Encoder_en/KonaTransformer/Encode/"
)

// weights looks up tensors by name and remembers the first error.
type weights struct {
	m   map[string]Tensor
	err error
}

func (w *weights) get(name string, shape ...int) Tensor {
	t, ok := w.m[name]
	if !ok {
		if w.err == nil {
			w.err = fmt.Errorf("model: weight %s is missing", name)
		}
		return Tensor{Shape: shape, F32: make([]float32, product(shape))}
	}
	if product(shape) != t.Len() || t.F32 == nil {
		if w.err == nil {
			w.err = fmt.Errorf("model: weight %s has shape %v, want %v float32", name, t.Shape, shape)
		}
		return Tensor{Shape: shape, F32: make([]float32, product(shape))}
	}
	return Tensor{Shape: shape, F32: t.F32}
}

func (w *weights) scalar(name string) float32 { return w.get(name).F32[0] }

func product(shape []int) int {
	n := 1
	for _, d := range shape {
		n *= d
	}
	return n
}

// Export builds the ONNX model of USE-lite from its TF.js weights and returns the
// serialised ModelProto (deterministic bytes for the same weights).
func Export(tf map[string]Tensor) ([]byte, error) {
	w := &weights{m: tf}
	g := &graphBuilder{}

	eps := w.scalar(stack + "Layer_1/TransformerLayer/FFN/layer_prepostprocess/layer_norm/Cast/x")
	maskBias := w.scalar(stack + "Layer_1/TransformerLayer/MultiheadAttention/DotProductAttention/attention_bias_ignore_padding/mul/y")
	l2Eps := w.scalar("module_apply_default/Encoder_en/hidden_layers/l2_normalize/Maximum/y")
	emb := w.get("module/Embeddings_en", 8002, 256)
	invTimescales := w.get(stack+"Layer_0/AddTimingSignal/TimingSignal/ExpandDims_1", 1, 128)

	// Clip to the model's 128 tokens, as the TF.js graph does (ClipToMaxLength).
	ids := g.op("Slice", nil, InputIDs, g.int64s([]int{1}, 0), g.int64s([]int{1}, MaxTokens), g.int64s([]int{1}, 1))
	mask := g.op("Slice", nil, InputMask, g.int64s([]int{1}, 0), g.int64s([]int{1}, MaxTokens), g.int64s([]int{1}, 1))
	// valid[b,t] = 1 where a token is present. The TF.js graph marks presence with
	// SparseToDense's default -1, so the unknown id 0 counts as a present token.
	validBool := g.op("Greater", nil, mask, g.int64s(nil, 0))
	valid := g.op("Cast", []*onnx.AttributeProto{attrInt("to", int64(onnx.TensorProto_FLOAT))}, validBool)
	valid3 := g.op("Unsqueeze", nil, valid, g.int64s([]int{1}, 2)) // [B,T,1]

	// Token embeddings plus the timing signal: the graph adds the scattered embeddings to
	// the scattered (embedding + timing), so x0 = 2*E[id] + timing(pos) at valid positions.
	e := g.op("Gather", nil, g.floats("embeddings", emb.Shape, emb.F32), ids)
	e2 := g.op("Mul", nil, e, g.scalar(2))
	shapeIDs := g.op("Shape", nil, ids)
	seqLen := g.op("Gather", []*onnx.AttributeProto{attrInt("axis", 0)}, shapeIDs, g.int64s(nil, 1))
	seqLenF := g.op("Cast", []*onnx.AttributeProto{attrInt("to", int64(onnx.TensorProto_FLOAT))}, seqLen)
	pos := g.op("Range", nil, g.scalar(0), seqLenF, g.scalar(1))                                         // [T]
	pos2 := g.op("Unsqueeze", nil, pos, g.int64s([]int{1}, 1))                                           // [T,1]
	scaled := g.op("Mul", nil, pos2, g.floats("inv_timescales", invTimescales.Shape, invTimescales.F32)) // [T,128]
	timing := g.op("Concat", []*onnx.AttributeProto{attrInt("axis", 1)}, g.op("Sin", nil, scaled), g.op("Cos", nil, scaled))
	x := g.op("Mul", nil, g.op("Add", nil, e2, timing), valid3)

	// Attention bias: -1e9 on padding keys, broadcast as [B,1,1,T].
	notValid := g.op("Sub", nil, g.scalar(1), valid)
	bias := g.op("Mul", nil, notValid, g.scalar(maskBias))
	bias4 := g.op("Unsqueeze", nil, bias, g.int64s([]int{2}, 1, 2))

	widths := []int{256, 512}
	for l, in := range widths {
		L := fmt.Sprintf("Layer_%d/TransformerLayer/", l)
		heads := 4
		depth := in / heads
		// Pre-layer-norm multi-head self-attention.
		lnS := w.get(encode+L+"layer_prepostprocess/layer_norm/layer_norm_scale/ConcatPartitions/concat", in)
		lnB := w.get(encode+L+"layer_prepostprocess/layer_norm/layer_norm_bias/ConcatPartitions/concat", in)
		h := g.op("LayerNormalization", []*onnx.AttributeProto{attrInt("axis", -1), attrFloat("epsilon", eps)},
			x, g.floats(g.name("ln_scale"), lnS.Shape, lnS.F32), g.floats(g.name("ln_bias"), lnB.Shape, lnB.F32))
		qkvW := w.get(moduleKT+L+"MultiheadAttention/qkv_transform_single/kernel/part_0", in, 3*in)
		qkvB := w.get(encode+L+"MultiheadAttention/qkv_transform_single/bias/ConcatPartitions/concat", 3*in)
		qkv := g.op("Add", nil, g.op("MatMul", nil, h, g.floats(g.name("qkv_w"), qkvW.Shape, qkvW.F32)),
			g.floats(g.name("qkv_b"), qkvB.Shape, qkvB.F32))
		split := g.name("split")
		q, k, v := split+"_q", split+"_k", split+"_v"
		g.nodes = append(g.nodes, &onnx.NodeProto{OpType: "Split", Name: split,
			Input: []string{qkv, g.int64s([]int{3}, int64(in), int64(in), int64(in))}, Output: []string{q, k, v},
			Attribute: []*onnx.AttributeProto{attrInt("axis", -1)}})
		headShape := g.int64s([]int{4}, 0, 0, int64(heads), int64(depth))
		toHeads := func(t string) string { // [B,T,C] -> [B,H,T,D]
			return g.op("Transpose", []*onnx.AttributeProto{attrInts("perm", 0, 2, 1, 3)}, g.op("Reshape", nil, t, headShape))
		}
		qs := g.op("Mul", nil, toHeads(q), g.scalar(w.scalar(stack+L+"MultiheadAttention/mul/y")))
		kt := g.op("Transpose", []*onnx.AttributeProto{attrInts("perm", 0, 2, 3, 1)}, g.op("Reshape", nil, k, headShape))
		logits := g.op("Add", nil, g.op("MatMul", nil, qs, kt), bias4)
		probs := g.op("Softmax", []*onnx.AttributeProto{attrInt("axis", -1)}, logits)
		ctx := g.op("MatMul", nil, probs, toHeads(v))
		merged := g.op("Reshape", nil, g.op("Transpose", []*onnx.AttributeProto{attrInts("perm", 0, 2, 1, 3)}, ctx),
			g.int64s([]int{3}, 0, 0, int64(in)))
		outW := w.get(moduleKT+L+"MultiheadAttention/output_transform_single/kernel/part_0", in, 512)
		outB := w.get(encode+L+"MultiheadAttention/output_transform_single/bias/ConcatPartitions/concat", 512)
		attn := g.op("Add", nil, g.op("MatMul", nil, merged, g.floats(g.name("out_w"), outW.Shape, outW.F32)),
			g.floats(g.name("out_b"), outB.Shape, outB.F32))
		residual := x
		if in != 512 {
			// AdjustResidualInput: a dense projection of the input at valid positions.
			dW := w.get(encode+L+"dense/kernel/ConcatPartitions/concat", in, 512)
			dB := w.get(encode+L+"dense/bias/ConcatPartitions/concat", 512)
			proj := g.op("Add", nil, g.op("MatMul", nil, x, g.floats(g.name("dense_w"), dW.Shape, dW.F32)),
				g.floats(g.name("dense_b"), dB.Shape, dB.F32))
			residual = g.op("Mul", nil, proj, valid3)
		}
		x = g.op("Add", nil, attn, residual)

		// Pre-layer-norm feed-forward, applied at valid positions only.
		fS := w.get(encode+L+"FFN/layer_prepostprocess/layer_norm/layer_norm_scale/ConcatPartitions/concat", 512)
		fB := w.get(encode+L+"FFN/layer_prepostprocess/layer_norm/layer_norm_bias/ConcatPartitions/concat", 512)
		fh := g.op("LayerNormalization", []*onnx.AttributeProto{attrInt("axis", -1), attrFloat("epsilon", eps)},
			x, g.floats(g.name("ffn_ln_scale"), fS.Shape, fS.F32), g.floats(g.name("ffn_ln_bias"), fB.Shape, fB.F32))
		w1 := w.get(stack+L+"FFN/conv1/Tensordot/Reshape_1", 512, 1536)
		b1 := w.get(encode+L+"FFN/conv1/bias/ConcatPartitions/concat", 1536)
		w2 := w.get(stack+L+"FFN/conv2/Tensordot/Reshape_1", 1536, 512)
		b2 := w.get(encode+L+"FFN/conv2/bias/ConcatPartitions/concat", 512)
		hidden := g.op("Relu", nil, g.op("Add", nil, g.op("MatMul", nil, fh, g.floats(g.name("ffn_w1"), w1.Shape, w1.F32)),
			g.floats(g.name("ffn_b1"), b1.Shape, b1.F32)))
		ffn := g.op("Add", nil, g.op("MatMul", nil, hidden, g.floats(g.name("ffn_w2"), w2.Shape, w2.F32)),
			g.floats(g.name("ffn_b2"), b2.Shape, b2.F32))
		x = g.op("Add", nil, g.op("Mul", nil, ffn, valid3), x)
	}

	// Mean over valid positions (divided by max(count, 1)), dense tanh, L2 normalisation.
	sum := g.op("ReduceSum", []*onnx.AttributeProto{attrInt("keepdims", 0)}, g.op("Mul", nil, x, valid3), g.int64s([]int{1}, 1))
	count := g.op("ReduceSum", []*onnx.AttributeProto{attrInt("keepdims", 1)}, valid, g.int64s([]int{1}, 1))
	mean := g.op("Div", nil, sum, g.op("Max", nil, count, g.scalar(1)))
	tW := w.get("module/Encoder_en/hidden_layers/tanh_layer_0/weights", 512, 512)
	tB := w.get("module/Encoder_en/hidden_layers/tanh_layer_0/bias", 512)
	y := g.op("Tanh", nil, g.op("Add", nil, g.op("MatMul", nil, mean, g.floats("tanh_w", tW.Shape, tW.F32)),
		g.floats("tanh_b", tB.Shape, tB.F32)))
	sq := g.op("ReduceSum", []*onnx.AttributeProto{attrInt("keepdims", 1)}, g.op("Mul", nil, y, y), g.int64s([]int{1}, 1))
	inv := g.op("Reciprocal", nil, g.op("Sqrt", nil, g.op("Max", nil, sq, g.scalar(l2Eps))))
	g.opTo(OutputName, "Mul", nil, y, inv)

	if w.err != nil {
		return nil, w.err
	}
	m := &onnx.ModelProto{
		IrVersion:       onnxIRVersion,
		OpsetImport:     []*onnx.OperatorSetIdProto{{Domain: "", Version: opsetVersion}},
		ProducerName:    "podsearch",
		ProducerVersion: "1",
		DocString:       "Universal Sentence Encoder Lite, exported from its TF.js weights by podsearch",
		Graph: &onnx.GraphProto{
			Name:        "use_lite",
			Node:        g.nodes,
			Initializer: g.inits,
			Input: []*onnx.ValueInfoProto{
				tensorValue(InputIDs, onnx.TensorProto_INT64, "batch", "seq"),
				tensorValue(InputMask, onnx.TensorProto_INT64, "batch", "seq"),
			},
			Output: []*onnx.ValueInfoProto{tensorValue(OutputName, onnx.TensorProto_FLOAT, "batch", EmbeddingDim)},
		},
	}
	return proto.MarshalOptions{Deterministic: true}.Marshal(m)
}
