package tokenizer

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// binaryMagic starts the compact binary vocabulary written by MarshalBinary.
const binaryMagic = "PSVOCAB1"

// MarshalBinary writes the vocabulary in a compact form that loads without JSON parsing
// (the wasm tokenizer guest reads it): the magic "PSVOCAB1", the piece count as uint32
// little-endian, then per piece its score as float64 little-endian bits, its byte length
// as a uvarint and its UTF-8 bytes.
func (u *Unigram) MarshalBinary() ([]byte, error) {
	out := make([]byte, 0, 16+len(u.pieces)*16)
	out = append(out, binaryMagic...)
	out = binary.LittleEndian.AppendUint32(out, uint32(len(u.pieces)))
	for _, p := range u.pieces {
		out = binary.LittleEndian.AppendUint64(out, math.Float64bits(p.Score))
		out = binary.AppendUvarint(out, uint64(len(p.Text)))
		out = append(out, p.Text...)
	}
	return out, nil
}

// UnmarshalBinary builds a tokenizer from the output of MarshalBinary.
func UnmarshalBinary(data []byte) (*Unigram, error) {
	if len(data) < len(binaryMagic)+4 || string(data[:len(binaryMagic)]) != binaryMagic {
		return nil, errors.New("tokenizer: not a binary vocabulary (bad magic)")
	}
	data = data[len(binaryMagic):]
	count := binary.LittleEndian.Uint32(data)
	data = data[4:]
	if uint64(count) > uint64(len(data))/9 {
		return nil, fmt.Errorf("tokenizer: binary vocabulary claims %d pieces in %d bytes", count, len(data))
	}
	pieces := make([]Piece, count)
	for i := range pieces {
		if len(data) < 8 {
			return nil, fmt.Errorf("tokenizer: binary vocabulary truncated at piece %d", i)
		}
		pieces[i].Score = math.Float64frombits(binary.LittleEndian.Uint64(data))
		data = data[8:]
		n, k := binary.Uvarint(data)
		if k <= 0 || n > uint64(len(data)-k) {
			return nil, fmt.Errorf("tokenizer: binary vocabulary truncated at piece %d", i)
		}
		pieces[i].Text = string(data[k : k+int(n)])
		data = data[k+int(n):]
	}
	if len(data) != 0 {
		return nil, fmt.Errorf("tokenizer: %d trailing bytes after the binary vocabulary", len(data))
	}
	return NewUnigram(pieces)
}
