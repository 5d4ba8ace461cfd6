package sq

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/podsearch/podsearch/core/vec"
)

func randomUnit(r *rand.Rand, n, d int) []float32 {
	data := make([]float32, n*d)
	for i := 0; i < n; i++ {
		row := vec.Row(data, d, i)
		for j := range row {
			row[j] = float32(r.NormFloat64())
		}
		vec.Normalize(row)
	}
	return data
}

func TestEncodeDecodeAndDistances(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	const n, d = 300, 64
	data := randomUnit(r, n, d)
	for _, bits := range []int{8, 4} {
		q, err := Train(data, d, bits)
		if err != nil {
			t.Fatal(err)
		}
		if q.CodeSize() != d*bits/8 {
			t.Fatalf("code size %d", q.CodeSize())
		}
		codes := q.EncodeAll(data)
		query := vec.Row(data, d, 0)
		ip, l2 := q.PrepareIP(query), q.PrepareL2(query)
		rec := make([]float32, d)
		for i := 0; i < n; i++ {
			code := codes[i*q.CodeSize() : (i+1)*q.CodeSize()]
			q.Decode(code, rec)
			// Each value is within half a step of the original (training data is in range).
			for j := range rec {
				if diff := math.Abs(float64(rec[j] - data[i*d+j])); diff > float64(q.Scale[j])*0.5+1e-6 {
					t.Fatalf("bits=%d row %d dim %d: error %v above half a step %v", bits, i, j, diff, q.Scale[j])
				}
			}
			if got, want := ip.Distance(code), -vec.Dot(query, rec); math.Abs(float64(got-want)) > 1e-4 {
				t.Fatalf("bits=%d: IP distance %v, decoded %v", bits, got, want)
			}
			if got, want := l2.Distance(code), vec.L2Sq(query, rec); math.Abs(float64(got-want)) > 1e-4 {
				t.Fatalf("bits=%d: L2 distance %v, decoded %v", bits, got, want)
			}
		}
	}
}

func TestBadShapes(t *testing.T) {
	if _, err := Train(make([]float32, 6), 3, 4); err == nil {
		t.Error("odd d with 4 bits accepted")
	}
	if _, err := Train(make([]float32, 6), 3, 7); err == nil {
		t.Error("7 bits accepted")
	}
	if _, err := Train(nil, 3, 8); err == nil {
		t.Error("empty training set accepted")
	}
	if _, err := Train([]float32{float32(math.NaN()), 1}, 2, 8); err == nil {
		t.Error("NaN accepted")
	}
	if _, err := New(2, 8, []float32{0}, []float32{1, 1}); err == nil {
		t.Error("short minima accepted")
	}
}
