package model

import (
	"fmt"

	"github.com/advancedclimatesystems/gonnx/onnx"
)

// graphBuilder accumulates ONNX nodes and initializers with generated unique names.
type graphBuilder struct {
	nodes []*onnx.NodeProto
	inits []*onnx.TensorProto
	seq   int
}

func (g *graphBuilder) name(prefix string) string {
	g.seq++
	return fmt.Sprintf("%s_%d", prefix, g.seq)
}

// op adds a node with one output and returns that output's name.
func (g *graphBuilder) op(opType string, attrs []*onnx.AttributeProto, inputs ...string) string {
	out := g.name(opType)
	g.nodes = append(g.nodes, &onnx.NodeProto{
		OpType: opType, Name: out, Input: inputs, Output: []string{out}, Attribute: attrs,
	})
	return out
}

// opTo adds a node whose single output has a given name (graph outputs).
func (g *graphBuilder) opTo(out, opType string, attrs []*onnx.AttributeProto, inputs ...string) {
	g.nodes = append(g.nodes, &onnx.NodeProto{
		OpType: opType, Name: out, Input: inputs, Output: []string{out}, Attribute: attrs,
	})
}

func (g *graphBuilder) floats(name string, shape []int, data []float32) string {
	g.inits = append(g.inits, &onnx.TensorProto{
		Name: name, Dims: dims(shape), DataType: int32(onnx.TensorProto_FLOAT), FloatData: data,
	})
	return name
}

func (g *graphBuilder) int64s(shape []int, data ...int64) string {
	name := g.name("const")
	g.inits = append(g.inits, &onnx.TensorProto{
		Name: name, Dims: dims(shape), DataType: int32(onnx.TensorProto_INT64), Int64Data: data,
	})
	return name
}

func (g *graphBuilder) scalar(v float32) string {
	return g.floats(g.name("scalar"), nil, []float32{v})
}

func dims(shape []int) []int64 {
	out := make([]int64, len(shape))
	for i, d := range shape {
		out[i] = int64(d)
	}
	return out
}

func attrInt(name string, v int64) *onnx.AttributeProto {
	return &onnx.AttributeProto{Name: name, Type: onnx.AttributeProto_INT, I: v}
}

func attrInts(name string, v ...int64) *onnx.AttributeProto {
	return &onnx.AttributeProto{Name: name, Type: onnx.AttributeProto_INTS, Ints: v}
}

func attrFloat(name string, v float32) *onnx.AttributeProto {
	return &onnx.AttributeProto{Name: name, Type: onnx.AttributeProto_FLOAT, F: v}
}

// tensorInput describes a graph input or output of the given element type whose dims are
// named (symbolic) or fixed.
func tensorValue(name string, elem onnx.TensorProto_DataType, shape ...any) *onnx.ValueInfoProto {
	var ds []*onnx.TensorShapeProto_Dimension
	for _, d := range shape {
		switch v := d.(type) {
		case string:
			ds = append(ds, &onnx.TensorShapeProto_Dimension{Value: &onnx.TensorShapeProto_Dimension_DimParam{DimParam: v}})
		case int:
			ds = append(ds, &onnx.TensorShapeProto_Dimension{Value: &onnx.TensorShapeProto_Dimension_DimValue{DimValue: int64(v)}})
		}
	}
	return &onnx.ValueInfoProto{
		Name: name,
		Type: &onnx.TypeProto{Value: &onnx.TypeProto_TensorType{TensorType: &onnx.TypeProto_Tensor{
			ElemType: int32(elem), Shape: &onnx.TensorShapeProto{Dim: ds},
		}}},
	}
}
