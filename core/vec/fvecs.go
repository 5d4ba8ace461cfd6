package vec

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"os"
)

// ReadFvecs reads a TEXMEX .fvecs file (per vector: an int32 width d, then d float32s,
// little-endian) and returns the vectors row-major with their width. Every row must have
// the same width.
func ReadFvecs(path string) ([]float32, int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, 0, err
	}
	return ParseFvecs(b, path)
}

// ParseFvecs is ReadFvecs on bytes in memory; name labels errors.
func ParseFvecs(b []byte, name string) ([]float32, int, error) {
	d, n, err := vecsShape(b, name)
	if err != nil {
		return nil, 0, err
	}
	out := make([]float32, 0, n*d)
	for i := 0; i < n; i++ {
		row := b[i*(4+4*d)+4 : (i+1)*(4+4*d)]
		for j := 0; j < d; j++ {
			out = append(out, math.Float32frombits(binary.LittleEndian.Uint32(row[4*j:])))
		}
	}
	return out, d, nil
}

// ReadIvecs reads a TEXMEX .ivecs file (ground-truth neighbour ids) into one slice per row.
func ReadIvecs(path string) ([][]int32, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	d, n, err := vecsShape(b, path)
	if err != nil {
		return nil, err
	}
	out := make([][]int32, n)
	for i := range out {
		row := b[i*(4+4*d)+4 : (i+1)*(4+4*d)]
		out[i] = make([]int32, d)
		for j := range out[i] {
			out[i][j] = int32(binary.LittleEndian.Uint32(row[4*j:]))
		}
	}
	return out, nil
}

func vecsShape(b []byte, name string) (d, n int, err error) {
	if len(b) < 4 {
		return 0, 0, fmt.Errorf("vec: %s: %d bytes is too short for a vectors file", name, len(b))
	}
	d = int(int32(binary.LittleEndian.Uint32(b)))
	if d <= 0 || d > 1<<20 {
		return 0, 0, fmt.Errorf("vec: %s: implausible width %d", name, d)
	}
	row := 4 + 4*d
	if len(b)%row != 0 {
		return 0, 0, fmt.Errorf("vec: %s: %d bytes is not a whole number of %d-d rows (truncated?)", name, len(b), d)
	}
	n = len(b) / row
	for i := 0; i < n; i++ {
		if w := int(int32(binary.LittleEndian.Uint32(b[i*row:]))); w != d {
			return 0, 0, fmt.Errorf("vec: %s: row %d has width %d, row 0 has %d", name, i, w, d)
		}
	}
	return d, n, nil
}

// WriteFvecs writes the rows of data (width d) as .fvecs to w.
func WriteFvecs(w io.Writer, data []float32, d int) error {
	bw := bufio.NewWriter(w)
	var buf [4]byte
	for i := 0; i+d <= len(data); i += d {
		binary.LittleEndian.PutUint32(buf[:], uint32(d))
		bw.Write(buf[:])
		for _, v := range data[i : i+d] {
			binary.LittleEndian.PutUint32(buf[:], math.Float32bits(v))
			bw.Write(buf[:])
		}
	}
	return bw.Flush()
}

// WriteIvecs writes rows of ids, all of one width, as .ivecs to w.
func WriteIvecs(w io.Writer, rows [][]int32) error {
	bw := bufio.NewWriter(w)
	var buf [4]byte
	for _, r := range rows {
		binary.LittleEndian.PutUint32(buf[:], uint32(len(r)))
		bw.Write(buf[:])
		for _, v := range r {
			binary.LittleEndian.PutUint32(buf[:], uint32(v))
			bw.Write(buf[:])
		}
	}
	return bw.Flush()
}
