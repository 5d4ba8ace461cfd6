package adapter

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
)

const magic = "PSADAPT1"

// maxHeader bounds the JSON header so a corrupted length cannot ask for gigabytes.
const maxHeader = 1 << 20

type header struct {
	Kind            Kind           `json:"kind"`
	Dim             int            `json:"dim"`
	Rank            int            `json:"rank,omitempty"`
	BothSides       bool           `json:"both_sides"`
	BaseFingerprint string         `json:"base_fingerprint"`
	Fingerprint     string         `json:"fingerprint"`
	Notes           map[string]any `json:"notes,omitempty"`
}

// Marshal encodes the adapter in the file format described in the package documentation.
func (a *Adapter) Marshal() ([]byte, error) {
	if a.Kind == Tower {
		if a.Tower == nil || len(a.Tower.ONNX) == 0 {
			return nil, fmt.Errorf("adapter: tower without a model")
		}
		return a.Tower.ONNX, nil
	}
	n, err := a.paramCount()
	if err != nil {
		return nil, err
	}
	params := a.params()
	if len(params) != n {
		return nil, fmt.Errorf("adapter: %d parameters, shape needs %d", len(params), n)
	}
	hdr, err := json.Marshal(header{Kind: a.Kind, Dim: a.Dim, Rank: a.Rank, BothSides: a.BothSides,
		BaseFingerprint: a.BaseFingerprint, Fingerprint: a.Fingerprint(), Notes: a.Notes})
	if err != nil {
		return nil, fmt.Errorf("adapter: header: %w", err)
	}
	var buf bytes.Buffer
	buf.WriteString(magic)
	_ = binary.Write(&buf, binary.LittleEndian, uint32(len(hdr)))
	buf.Write(hdr)
	b := buf.Bytes()
	for _, p := range params {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(p))
	}
	sum := sha256.Sum256(b)
	return append(b, sum[:]...), nil
}

// Unmarshal decodes an adapter file, checking the magic, the shape, the checksum and the
// recorded fingerprint.
func Unmarshal(b []byte) (*Adapter, error) {
	if len(b) < len(magic)+4+sha256.Size {
		return nil, fmt.Errorf("adapter: file too short (%d bytes)", len(b))
	}
	if string(b[:len(magic)]) != magic {
		return unmarshalTower(b)
	}
	body, sum := b[:len(b)-sha256.Size], b[len(b)-sha256.Size:]
	if got := sha256.Sum256(body); !bytes.Equal(got[:], sum) {
		return nil, fmt.Errorf("adapter: checksum mismatch (file truncated or corrupted)")
	}
	hl := binary.LittleEndian.Uint32(body[len(magic):])
	if hl > maxHeader || int(hl) > len(body)-len(magic)-4 {
		return nil, fmt.Errorf("adapter: header length %d out of range", hl)
	}
	rest := body[len(magic)+4:]
	var h header
	if err := json.Unmarshal(rest[:hl], &h); err != nil {
		return nil, fmt.Errorf("adapter: header: %w", err)
	}
	a := &Adapter{Kind: h.Kind, Dim: h.Dim, Rank: h.Rank, BothSides: h.BothSides,
		BaseFingerprint: h.BaseFingerprint, Notes: h.Notes}
	if a.Kind == Linear {
		a.Rank = 0
	}
	n, err := a.paramCount()
	if err != nil {
		return nil, err
	}
	data := rest[hl:]
	if len(data) != 4*n {
		return nil, fmt.Errorf("adapter: %d parameter bytes, shape %s dim %d rank %d needs %d", len(data), a.Kind, a.Dim, a.Rank, 4*n)
	}
	params := make([]float32, n)
	for i := range params {
		params[i] = math.Float32frombits(binary.LittleEndian.Uint32(data[4*i:]))
		if math.IsNaN(float64(params[i])) || math.IsInf(float64(params[i]), 0) {
			return nil, fmt.Errorf("adapter: parameter %d is not finite", i)
		}
	}
	if a.Kind == Linear {
		a.W = params
	} else {
		a.U, a.V = params[:a.Dim*a.Rank], params[a.Dim*a.Rank:]
	}
	if h.Fingerprint != "" && h.Fingerprint != a.Fingerprint() {
		return nil, fmt.Errorf("adapter: recorded fingerprint %s does not match the parameters (%s)", h.Fingerprint, a.Fingerprint())
	}
	return a, nil
}

// Save writes the adapter to path atomically (a temp file renamed into place).
func (a *Adapter) Save(path string) error {
	b, err := a.Marshal()
	if err != nil {
		return err
	}
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("adapter: %w", err)
		}
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".adapter-*")
	if err != nil {
		return fmt.Errorf("adapter: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return fmt.Errorf("adapter: write %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("adapter: write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("adapter: %w", err)
	}
	return nil
}

// Load reads an adapter file.
func Load(path string) (*Adapter, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("adapter: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, 1<<30))
	if err != nil {
		return nil, fmt.Errorf("adapter: read %s: %w", path, err)
	}
	a, err := Unmarshal(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if a.Tower != nil {
		a.Tower.Path = path
	}
	return a, nil
}

// LoadFor reads an adapter file and refuses it unless it was trained on baseFingerprint.
func LoadFor(path, baseFingerprint string) (*Adapter, error) {
	a, err := Load(path)
	if err != nil {
		return nil, err
	}
	if a.BaseFingerprint != baseFingerprint {
		return nil, fmt.Errorf("%w: %s was trained on model %s, the encoder is %s", ErrFingerprint, path, short(a.BaseFingerprint), short(baseFingerprint))
	}
	return a, nil
}

func short(fp string) string {
	if len(fp) > 12 {
		return fp[:12]
	}
	if fp == "" {
		return "(none)"
	}
	return fp
}
