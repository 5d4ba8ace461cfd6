package model

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
)

// Tensor is one weight of the TF.js model: float32 or int32 values in row-major order.
type Tensor struct {
	Shape []int
	F32   []float32 // set when the dtype is float32
	I32   []int32   // set when the dtype is int32
}

// Len is the number of elements the shape holds.
func (t Tensor) Len() int {
	n := 1
	for _, d := range t.Shape {
		n *= d
	}
	return n
}

type tfjsManifest struct {
	WeightsManifest []struct {
		Paths   []string `json:"paths"`
		Weights []struct {
			Name  string `json:"name"`
			Shape []int  `json:"shape"`
			DType string `json:"dtype"`
		} `json:"weights"`
	} `json:"weightsManifest"`
}

// ReadTFJS reads model.json in dir and the weight shards it names, returning every weight
// by name. Truncated shards, unknown dtypes and quantized weights are errors.
func ReadTFJS(dir string) (map[string]Tensor, error) {
	raw, err := os.ReadFile(filepath.Join(dir, "model.json"))
	if err != nil {
		return nil, fmt.Errorf("model: %w", err)
	}
	var m tfjsManifest
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("model: model.json: %w", err)
	}
	if len(m.WeightsManifest) == 0 {
		return nil, fmt.Errorf("model: model.json lists no weights")
	}
	out := map[string]Tensor{}
	for gi, group := range m.WeightsManifest {
		var buf []byte
		for _, p := range group.Paths {
			if filepath.Base(p) != p {
				return nil, fmt.Errorf("model: weight shard path %q leaves the model folder", p)
			}
			b, err := os.ReadFile(filepath.Join(dir, p))
			if err != nil {
				return nil, fmt.Errorf("model: weight shard: %w", err)
			}
			buf = append(buf, b...)
		}
		off := 0
		for _, w := range group.Weights {
			t := Tensor{Shape: w.Shape}
			n := t.Len()
			if n < 0 || off+4*n > len(buf) {
				return nil, fmt.Errorf("model: weight group %d is truncated at %s", gi, w.Name)
			}
			chunk := buf[off : off+4*n]
			switch w.DType {
			case "float32":
				t.F32 = make([]float32, n)
				for i := range t.F32 {
					t.F32[i] = math.Float32frombits(binary.LittleEndian.Uint32(chunk[4*i:]))
				}
			case "int32":
				t.I32 = make([]int32, n)
				for i := range t.I32 {
					t.I32[i] = int32(binary.LittleEndian.Uint32(chunk[4*i:]))
				}
			default:
				return nil, fmt.Errorf("model: weight %s has unsupported dtype %q", w.Name, w.DType)
			}
			out[w.Name] = t
			off += 4 * n
		}
		if off != len(buf) {
			return nil, fmt.Errorf("model: weight group %d has %d bytes left over", gi, len(buf)-off)
		}
	}
	return out, nil
}
