package tq

import (
	"bytes"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/podsearch/podsearch/core/vec"
)

// synthetic returns n d-dimensional rows with an uneven spectrum: independent Gaussian
// components with standard deviations k^-0.9 along random directions, plus an offset.
func synthetic(seed uint64, n, d int) []float32 {
	r := rand.New(rand.NewPCG(seed, 7))
	dirs := make([]float32, d*d)
	for i := range dirs {
		dirs[i] = float32(r.NormFloat64())
	}
	for k := 0; k < d; k++ {
		vec.Normalize(vec.Row(dirs, d, k))
	}
	offset := make([]float32, d)
	for j := range offset {
		offset[j] = float32(r.NormFloat64()) * 0.1
	}
	data := make([]float32, n*d)
	for i := 0; i < n; i++ {
		row := vec.Row(data, d, i)
		copy(row, offset)
		for k := 0; k < d; k++ {
			z := float32(r.NormFloat64() * math.Pow(float64(k+1), -0.9))
			for j, v := range vec.Row(dirs, d, k) {
				row[j] += z * v
			}
		}
	}
	return data
}

func TestRoundTripAndDistances(t *testing.T) {
	const n, d = 1500, 64
	data := synthetic(1, n, d)
	for _, budget := range []int{8, 24, 64, 100} {
		q, err := Train(data, d, budget)
		if err != nil {
			t.Fatal(err)
		}
		cs := q.CodeSize()
		if cs > budget || cs == 0 {
			t.Fatalf("budget %d: code size %d", budget, cs)
		}
		codes := q.EncodeAll(data)
		query := vec.Row(data, d, 3)
		ip, l2 := q.PrepareIP(query), q.PrepareL2(query)
		rec := make([]float32, d)
		again := make([]byte, cs)
		for i := 0; i < n; i++ {
			code := codes[i*cs : (i+1)*cs]
			q.Decode(code, rec)
			// The decoded vector lies on the code's levels: encoding it again gives the code.
			q.Encode(rec, again)
			if !bytes.Equal(again, code) {
				t.Fatalf("budget %d row %d: re-encoded %x, want %x", budget, i, again, code)
			}
			want := -vec.Dot(query, rec)
			// Half-precision rotation rows (queryAxes) add at most about 2^-11 of |query||rec|.
			tol := 1e-4 * (1 + math.Abs(float64(want)))
			if q.rot.Half() {
				tol += float64(vec.Norm(query)*vec.Norm(rec)) / 2048
			}
			if got := ip.Distance(code); math.Abs(float64(got-want)) > tol {
				t.Fatalf("budget %d row %d: IP distance %v, decoded %v", budget, i, got, want)
			}
			want = vec.L2Sq(query, rec)
			if got := l2.Distance(code); math.Abs(float64(got-want)) > 1e-4*(1+math.Abs(float64(want))) {
				t.Fatalf("budget %d row %d: L2 distance %v, decoded %v", budget, i, got, want)
			}
		}
	}
}

// reconstructionError is the mean squared error of decoding the encoded rows of data.
func reconstructionError(q *Quantizer, data []float32) float64 {
	code := make([]byte, q.CodeSize())
	rec := make([]float32, q.D)
	var e float64
	n := len(data) / q.D
	for i := 0; i < n; i++ {
		x := vec.Row(data, q.D, i)
		q.Encode(x, code)
		q.Decode(code, rec)
		e += float64(vec.L2Sq(x, rec))
	}
	return e / float64(n)
}

func TestAllocationFollowsBudgetAndVariance(t *testing.T) {
	const n, d = 1500, 64
	data := synthetic(2, n, d)
	held := synthetic(3, 300, d)
	prev := math.Inf(1)
	for _, budget := range []int{1, 4, 16, 32, 64, 128} {
		q, err := Train(data, d, budget)
		if err != nil {
			t.Fatal(err)
		}
		total := 0
		for _, b := range q.Bits {
			total += int(b)
		}
		if q.CodeSize() > budget || total > 8*budget {
			t.Fatalf("budget %d: code size %d, %d bits", budget, q.CodeSize(), total)
		}
		// All but the byte-padding of at most eight lane groups is used.
		if q.CodeSize() < budget-8 {
			t.Errorf("budget %d: only %d bytes used", budget, q.CodeSize())
		}
		// The axis of largest variance gets at least the width of the least kept one.
		if q.Bits[0] < q.Bits[q.R-1] {
			t.Errorf("budget %d: first axis %d bits, last kept %d", budget, q.Bits[0], q.Bits[q.R-1])
		}
		e := reconstructionError(q, held)
		if e >= prev {
			t.Errorf("budget %d: held-out error %v, not below the smaller budget's %v", budget, e, prev)
		}
		prev = e
	}
}

func TestDeterministicAndMarshalRoundTrip(t *testing.T) {
	const n, d = 800, 32
	data := synthetic(4, n, d)
	q1, err := Train(data, d, 20)
	if err != nil {
		t.Fatal(err)
	}
	q2, err := Train(data, d, 20)
	if err != nil {
		t.Fatal(err)
	}
	b1, _ := q1.MarshalBinary()
	b2, _ := q2.MarshalBinary()
	if !bytes.Equal(b1, b2) {
		t.Fatal("two trainings on the same data differ")
	}
	var q3 Quantizer
	if err := q3.UnmarshalBinary(b1); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(q1.EncodeAll(data), q3.EncodeAll(data)) {
		t.Fatal("unmarshalled quantizer encodes differently")
	}
	code := q1.EncodeAll(data[:d])
	query := vec.Row(data, d, 5)
	if a, b := q1.PrepareIP(query).Distance(code), q3.PrepareIP(query).Distance(code); a != b {
		t.Fatalf("distance %v after unmarshal, %v before", b, a)
	}
	for cut := 0; cut < len(b1); cut += 1 + cut/3 {
		if err := new(Quantizer).UnmarshalBinary(b1[:cut]); err == nil {
			t.Fatalf("blob truncated to %d bytes accepted", cut)
		}
	}
	corrupt := func(name string, off int, v byte) {
		c := bytes.Clone(b1)
		c[off] = v
		if err := new(Quantizer).UnmarshalBinary(c); err == nil {
			t.Errorf("%s accepted", name)
		} else {
			t.Logf("%s: %v", name, err)
		}
	}
	corrupt("bad magic", 0, 'X')
	corrupt("bad version", 4, 9)
	corrupt("R > D", 12, byte(d+1))
	corrupt("zero width", header+4*d, 0)
	corrupt("width 17", header+4*d, MaxBits+1)
	// 0xff in the top byte of a float makes it NaN.
	corrupt("NaN mean", header+3, 0xff)
	if err := new(Quantizer).UnmarshalBinary(append(bytes.Clone(b1), 0)); err == nil {
		t.Error("trailing byte accepted")
	}
}

func TestBadShapes(t *testing.T) {
	good := synthetic(5, 10, 4)
	for _, c := range []struct {
		name      string
		data      []float32
		d, budget int
	}{
		{"d=0", good, 0, 1},
		{"empty", nil, 4, 1},
		{"ragged", good[:7], 4, 1},
		{"one row", good[:4], 4, 1},
		{"budget 0", good, 4, 0},
		{"budget above 16 bits a value", good, 4, 9},
		{"NaN", append([]float32{float32(math.NaN())}, good[1:]...), 4, 2},
		{"constant", make([]float32, 40), 4, 2},
	} {
		if _, err := Train(c.data, c.d, c.budget); err == nil {
			t.Errorf("%s accepted", c.name)
		}
	}
}

func FuzzUnmarshalBinary(f *testing.F) {
	data := synthetic(6, 200, 8)
	q, err := Train(data, 8, 6)
	if err != nil {
		f.Fatal(err)
	}
	blob, _ := q.MarshalBinary()
	f.Add(blob)
	f.Add(blob[:header])
	f.Add([]byte(magic))
	f.Fuzz(func(t *testing.T, b []byte) {
		var q Quantizer
		if err := q.UnmarshalBinary(b); err != nil {
			return
		}
		// Whatever is accepted must work and marshal back to the same bytes.
		x := make([]float32, q.D)
		code := make([]byte, q.CodeSize())
		q.Encode(x, code)
		q.Decode(code, x)
		_ = q.PrepareIP(x).Distance(code)
		_ = q.PrepareL2(x).Distance(code)
		out, err := q.MarshalBinary()
		if err != nil || !bytes.Equal(out, b) {
			t.Fatalf("accepted blob does not marshal back (%v)", err)
		}
	})
}

// TestPrepareIPToReuses checks that a Query prepared again for another query scores exactly
// as a fresh one, and that preparing it again allocates nothing.
func TestPrepareIPToReuses(t *testing.T) {
	const n, d = 400, 64
	data := synthetic(2, n, d)
	q, err := Train(data, d, 24)
	if err != nil {
		t.Fatal(err)
	}
	codes := q.EncodeAll(data)
	cs := q.CodeSize()
	p := q.PrepareIP(vec.Row(data, d, 1))
	for _, qi := range []int{5, 9} {
		query := vec.Row(data, d, qi)
		p = q.PrepareIPTo(p, query)
		fresh := q.PrepareIP(query)
		for i := 0; i < n; i++ {
			code := codes[i*cs : (i+1)*cs]
			if got, want := p.Distance(code), fresh.Distance(code); got != want {
				t.Fatalf("query %d row %d: reused %v, fresh %v", qi, i, got, want)
			}
		}
	}
	if a := testing.AllocsPerRun(10, func() { p = q.PrepareIPTo(p, vec.Row(data, d, 7)) }); a != 0 {
		t.Errorf("PrepareIPTo allocates %v times a call, want 0", a)
	}
	other, err := Train(data, d, 8)
	if err != nil {
		t.Fatal(err)
	}
	// A Query of another Quantizer is not reused.
	if o := other.PrepareIPTo(p, vec.Row(data, d, 7)); o == p || o.Distance(codes[:other.CodeSize()]) != other.PrepareIP(vec.Row(data, d, 7)).Distance(codes[:other.CodeSize()]) {
		t.Error("PrepareIPTo reused a Query of another Quantizer")
	}
}
