package wire

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"

	"github.com/x448/float16"

	"github.com/podsearch/podsearch/core/encoder"
)

// Media types and headers of the encoder protocol.
const (
	// ContentTypeJSON is the JSON request and response type.
	ContentTypeJSON = "application/json"
	// ContentTypeTokens is the binary token-id request type (EncodeTokens).
	ContentTypeTokens = "application/vnd.podsearch.tokens"
	// ContentTypeF32 is the binary float32 embeddings response type (EncodeEmbeddings).
	ContentTypeF32 = "application/vnd.podsearch.embeddings.f32"
	// ContentTypeF16 is the binary float16 embeddings response type (EncodeEmbeddings).
	ContentTypeF16 = "application/vnd.podsearch.embeddings.f16"
	// HeaderDeadline carries the time the caller still waits, in whole milliseconds
	// (relative, like gRPC's grpc-timeout, so clocks need not agree).
	HeaderDeadline = "X-Deadline-Ms"
	// HeaderModel carries the model fingerprint on every embed response.
	HeaderModel = "X-Model-Fingerprint"
	// EmbedPath is the embedding endpoint.
	EmbedPath = "/v1/embed"
)

// VocabSize is the number of token ids of the USE-lite vocabulary: valid ids are 0..VocabSize-1.
const VocabSize = encoder.VocabRows

// DType is the element type of a binary body.
type DType uint8

// Element types of binary bodies.
const (
	// Uint16 token ids (the vocabulary fits in 16 bits).
	Uint16 DType = 1
	// Int32 token ids.
	Int32 DType = 2
	// Float32 embedding values.
	Float32 DType = 1
	// Float16 embedding values (IEEE 754 half precision, round to nearest even).
	Float16 DType = 2
)

// ErrLimit marks input that breaks a size limit (the service answers 413); other decoding
// and validation errors are plain bad input (400).
var ErrLimit = errors.New("limit exceeded")

// Limits bounds a request.
type Limits struct {
	// MaxSeqs is the most sequences (or texts) in one request.
	MaxSeqs int
	// MaxSeqTokens is the most tokens in one sequence.
	MaxSeqTokens int
}

const (
	tokensMagic     = "PSTK"
	embeddingsMagic = "PSEM"
	version         = 1
	tokensHeader    = 12
	embedHeader     = 16
)

// JSONRequest is the JSON body of POST /v1/embed: exactly one of Texts and TokenIDs.
type JSONRequest struct {
	// Texts are raw texts; the service tokenizes them.
	Texts []string `json:"texts,omitempty"`
	// TokenIDs are token-id sequences, as edges send them after tokenizing locally.
	TokenIDs [][]int32 `json:"token_ids,omitempty"`
}

// JSONResponse is the JSON answer of POST /v1/embed.
type JSONResponse struct {
	// Model is the fingerprint of the model the vectors come from.
	Model string `json:"model"`
	// Embeddings holds one vector per input, in input order.
	Embeddings [][]float32 `json:"embeddings"`
}

// JSONError is the JSON body of every error answer.
type JSONError struct {
	// Error says what was wrong.
	Error string `json:"error"`
}

// ValidateTokens checks token-id sequences against the limits and the vocabulary.
func ValidateTokens(seqs [][]int32, lim Limits) error {
	if len(seqs) == 0 {
		return errors.New("no sequences: send at least one")
	}
	if lim.MaxSeqs > 0 && len(seqs) > lim.MaxSeqs {
		return fmt.Errorf("%w: %d sequences in one request; the limit is %d", ErrLimit, len(seqs), lim.MaxSeqs)
	}
	for i, s := range seqs {
		if len(s) == 0 {
			return fmt.Errorf("sequence %d is empty", i)
		}
		if lim.MaxSeqTokens > 0 && len(s) > lim.MaxSeqTokens {
			return fmt.Errorf("%w: sequence %d has %d tokens; the limit is %d (clip to the model's maximum)", ErrLimit, i, len(s), lim.MaxSeqTokens)
		}
		for j, id := range s {
			if id < 0 || id >= VocabSize {
				return fmt.Errorf("token_ids[%d][%d] = %d is outside the vocabulary 0..%d", i, j, id, VocabSize-1)
			}
		}
	}
	return nil
}

// EncodeTokens appends the binary token-id encoding of seqs to dst, with uint16 ids when
// every id fits, else int32.
//
// Layout (little-endian): "PSTK", version u8 = 1, dtype u8 (1 uint16, 2 int32), two zero
// bytes, n u32, n lengths u32, then every id of every sequence in order.
func EncodeTokens(dst []byte, seqs [][]int32) []byte {
	dt, total := Uint16, 0
	for _, s := range seqs {
		total += len(s)
		for _, id := range s {
			if id < 0 || id > math.MaxUint16 {
				dt = Int32
			}
		}
	}
	size := 2
	if dt == Int32 {
		size = 4
	}
	dst = append(dst, tokensMagic...)
	dst = append(dst, version, byte(dt), 0, 0)
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(seqs)))
	for _, s := range seqs {
		dst = binary.LittleEndian.AppendUint32(dst, uint32(len(s)))
	}
	dst = growBytes(dst, total*size)
	for _, s := range seqs {
		for _, id := range s {
			if dt == Uint16 {
				dst = binary.LittleEndian.AppendUint16(dst, uint16(id))
			} else {
				dst = binary.LittleEndian.AppendUint32(dst, uint32(id))
			}
		}
	}
	return dst
}

// DecodeTokens parses a binary token-id body, checking the limits before it allocates, and
// validates the ids (ValidateTokens).
func DecodeTokens(b []byte, lim Limits) ([][]int32, error) {
	if len(b) < tokensHeader {
		return nil, fmt.Errorf("binary token body is %d bytes, shorter than its %d-byte header", len(b), tokensHeader)
	}
	if string(b[:4]) != tokensMagic {
		return nil, fmt.Errorf("binary token body does not start with %q", tokensMagic)
	}
	if b[4] != version {
		return nil, fmt.Errorf("binary token body version %d is not supported (want %d)", b[4], version)
	}
	var size int
	switch DType(b[5]) {
	case Uint16:
		size = 2
	case Int32:
		size = 4
	default:
		return nil, fmt.Errorf("binary token dtype %d is not supported (1 = uint16, 2 = int32)", b[5])
	}
	if b[6] != 0 || b[7] != 0 {
		return nil, errors.New("binary token body: reserved header bytes must be zero")
	}
	n := uint64(binary.LittleEndian.Uint32(b[8:]))
	if n == 0 {
		return nil, errors.New("no sequences: send at least one")
	}
	if lim.MaxSeqs > 0 && n > uint64(lim.MaxSeqs) {
		return nil, fmt.Errorf("%w: %d sequences in one request; the limit is %d", ErrLimit, n, lim.MaxSeqs)
	}
	if uint64(len(b)-tokensHeader) < 4*n {
		return nil, fmt.Errorf("binary token body is truncated: %d lengths announced, %d bytes left", n, len(b)-tokensHeader)
	}
	var total uint64
	for i := uint64(0); i < n; i++ {
		l := uint64(binary.LittleEndian.Uint32(b[tokensHeader+4*i:]))
		if lim.MaxSeqTokens > 0 && l > uint64(lim.MaxSeqTokens) {
			return nil, fmt.Errorf("%w: sequence %d has %d tokens; the limit is %d (clip to the model's maximum)", ErrLimit, i, l, lim.MaxSeqTokens)
		}
		total += l
	}
	body := b[tokensHeader+4*n:]
	if uint64(len(body)) != total*uint64(size) {
		return nil, fmt.Errorf("binary token body has %d bytes of ids; its lengths announce %d", len(body), total*uint64(size))
	}
	flat := make([]int32, total)
	for i := range flat {
		if size == 2 {
			flat[i] = int32(binary.LittleEndian.Uint16(body[2*i:]))
		} else {
			flat[i] = int32(binary.LittleEndian.Uint32(body[4*i:]))
		}
	}
	seqs := make([][]int32, n)
	off := 0
	for i := range seqs {
		l := int(binary.LittleEndian.Uint32(b[tokensHeader+4*i:]))
		seqs[i] = flat[off : off+l : off+l]
		off += l
	}
	return seqs, ValidateTokens(seqs, lim)
}

// EncodeEmbeddings appends the binary embeddings encoding to dst. Every vector must have
// the same length.
//
// Layout (little-endian): "PSEM", version u8 = 1, dtype u8 (1 float32, 2 float16),
// fingerprint length F u16, n u32, dim u32, F bytes of fingerprint, then n*dim values.
func EncodeEmbeddings(dst []byte, model string, vecs [][]float32, dt DType) []byte {
	dim := 0
	if len(vecs) > 0 {
		dim = len(vecs[0])
	}
	size := 4
	if dt == Float16 {
		size = 2
	}
	dst = append(dst, embeddingsMagic...)
	dst = append(dst, version, byte(dt))
	dst = binary.LittleEndian.AppendUint16(dst, uint16(len(model)))
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(vecs)))
	dst = binary.LittleEndian.AppendUint32(dst, uint32(dim))
	dst = append(dst, model...)
	dst = growBytes(dst, len(vecs)*dim*size)
	for _, v := range vecs {
		for _, f := range v {
			if dt == Float16 {
				dst = binary.LittleEndian.AppendUint16(dst, float16.Fromfloat32(f).Bits())
			} else {
				dst = binary.LittleEndian.AppendUint32(dst, math.Float32bits(f))
			}
		}
	}
	return dst
}

// DecodeEmbeddings parses a binary embeddings body into the model fingerprint and vectors.
func DecodeEmbeddings(b []byte) (model string, vecs [][]float32, err error) {
	if len(b) < embedHeader {
		return "", nil, fmt.Errorf("binary embeddings body is %d bytes, shorter than its %d-byte header", len(b), embedHeader)
	}
	if string(b[:4]) != embeddingsMagic {
		return "", nil, fmt.Errorf("binary embeddings body does not start with %q", embeddingsMagic)
	}
	if b[4] != version {
		return "", nil, fmt.Errorf("binary embeddings version %d is not supported (want %d)", b[4], version)
	}
	size := 4
	switch DType(b[5]) {
	case Float32:
	case Float16:
		size = 2
	default:
		return "", nil, fmt.Errorf("binary embeddings dtype %d is not supported (1 = float32, 2 = float16)", b[5])
	}
	fl := int(binary.LittleEndian.Uint16(b[6:]))
	n := uint64(binary.LittleEndian.Uint32(b[8:]))
	dim := uint64(binary.LittleEndian.Uint32(b[12:]))
	rest := b[embedHeader:]
	if len(rest) < fl {
		return "", nil, errors.New("binary embeddings body is truncated inside the fingerprint")
	}
	model = string(rest[:fl])
	rest = rest[fl:]
	if n != 0 && dim == 0 {
		return "", nil, fmt.Errorf("binary embeddings body announces %d vectors of dimension 0", n)
	}
	if n != 0 && dim > uint64(len(rest))/n/uint64(size) || uint64(len(rest)) != n*dim*uint64(size) {
		return "", nil, fmt.Errorf("binary embeddings body has %d value bytes; its header announces %d x %d", len(rest), n, dim)
	}
	flat := make([]float32, n*dim)
	for i := range flat {
		if size == 2 {
			flat[i] = float16.Frombits(binary.LittleEndian.Uint16(rest[2*i:])).Float32()
		} else {
			flat[i] = math.Float32frombits(binary.LittleEndian.Uint32(rest[4*i:]))
		}
	}
	vecs = make([][]float32, n)
	for i := range vecs {
		vecs[i] = flat[uint64(i)*dim : uint64(i+1)*dim : uint64(i+1)*dim]
	}
	return model, vecs, nil
}

// AppendJSONEmbeddings appends the JSONResponse body for model and vecs to dst. Each value
// is written in the shortest form that reads back as the same float32.
func AppendJSONEmbeddings(dst []byte, model string, vecs [][]float32) []byte {
	dst = append(dst, `{"model":`...)
	q, _ := json.Marshal(model) // a string always marshals
	dst = append(dst, q...)
	dst = append(dst, `,"embeddings":[`...)
	for i, v := range vecs {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, '[')
		for j, f := range v {
			if j > 0 {
				dst = append(dst, ',')
			}
			if math.IsNaN(float64(f)) || math.IsInf(float64(f), 0) {
				dst = append(dst, "null"...)
				continue
			}
			dst = strconv.AppendFloat(dst, float64(f), 'g', -1, 32)
		}
		dst = append(dst, ']')
	}
	return append(dst, "]}"...)
}

func growBytes(b []byte, n int) []byte {
	if cap(b)-len(b) < n {
		nb := make([]byte, len(b), len(b)+n)
		copy(nb, b)
		return nb
	}
	return b
}
