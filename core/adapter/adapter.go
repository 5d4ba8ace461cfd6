package adapter

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/podsearch/podsearch/core/vec"
)

// Kind is the shape of an adapter.
type Kind string

const (
	// Linear is a full Dim x Dim matrix, initialised at the identity.
	Linear Kind = "linear"
	// LowRank is x + U Vᵀ x with U Dim x Rank (zero at start) and V Dim x Rank.
	LowRank Kind = "lowrank"
)

// Adapter maps encoder vectors to tuned vectors. The zero value is not usable; build one
// with New or Load.
type Adapter struct {
	// Kind is Linear or LowRank.
	Kind Kind
	// Dim is the vector width (encoder.Dim for USE-lite).
	Dim int
	// Rank is the inner width of a LowRank adapter (0 for Linear).
	Rank int
	// BothSides applies the adapter to episode vectors as well as to queries (a Tower:
	// the tower embeds episode texts too).
	BothSides bool
	// BaseFingerprint is the fingerprint of the encoder the adapter was trained on.
	BaseFingerprint string
	// Notes is free-form provenance (training flags, data, losses) stored in the file.
	Notes map[string]any
	// W is the Dim x Dim matrix of a Linear adapter, row-major: z = W x.
	W []float32
	// U and V are the Dim x Rank factors of a LowRank adapter, row-major: z = x + U (Vᵀ x).
	U, V []float32
	// Tower is the tuned query encoder of a Tower adapter (nil for the other kinds).
	Tower *TowerModel
}

// Config chooses the shape of a new adapter.
type Config struct {
	Kind      Kind
	Dim       int
	Rank      int // LowRank only; must be in [1, Dim]
	BothSides bool
	// Seed drives the random initialisation of V (LowRank only).
	Seed uint64
}

// New returns an adapter that starts as the identity map.
func New(cfg Config, baseFingerprint string) (*Adapter, error) {
	if cfg.Dim < 1 {
		return nil, fmt.Errorf("adapter: dim %d must be positive", cfg.Dim)
	}
	a := &Adapter{Kind: cfg.Kind, Dim: cfg.Dim, BothSides: cfg.BothSides, BaseFingerprint: baseFingerprint}
	switch cfg.Kind {
	case Linear:
		a.W = make([]float32, cfg.Dim*cfg.Dim)
		for i := 0; i < cfg.Dim; i++ {
			a.W[i*cfg.Dim+i] = 1
		}
	case LowRank:
		if cfg.Rank < 1 || cfg.Rank > cfg.Dim {
			return nil, fmt.Errorf("adapter: rank %d must be in [1, %d]", cfg.Rank, cfg.Dim)
		}
		a.Rank = cfg.Rank
		a.U = make([]float32, cfg.Dim*cfg.Rank)
		a.V = make([]float32, cfg.Dim*cfg.Rank)
		rng := rand.New(rand.NewPCG(cfg.Seed, 0x5eed))
		std := 1 / math.Sqrt(float64(cfg.Dim))
		for i := range a.V {
			a.V[i] = float32(rng.NormFloat64() * std)
		}
	default:
		return nil, fmt.Errorf("adapter: unknown kind %q (want %q or %q)", cfg.Kind, Linear, LowRank)
	}
	return a, nil
}

// Apply maps x (length Dim) to a new unit-length vector.
func (a *Adapter) Apply(x []float32) ([]float32, error) {
	if len(x) != a.Dim {
		return nil, fmt.Errorf("adapter: vector of length %d, want %d", len(x), a.Dim)
	}
	z := make([]float32, a.Dim)
	switch a.Kind {
	case Tower:
		return nil, ErrTowerVectors
	case Linear:
		for i := 0; i < a.Dim; i++ {
			z[i] = vec.Dot(a.W[i*a.Dim:(i+1)*a.Dim], x)
		}
	case LowRank:
		h := make([]float32, a.Rank)
		for i := 0; i < a.Dim; i++ {
			xi := x[i]
			row := a.V[i*a.Rank : (i+1)*a.Rank]
			for r := range h {
				h[r] += row[r] * xi
			}
		}
		for i := 0; i < a.Dim; i++ {
			z[i] = x[i] + vec.Dot(a.U[i*a.Rank:(i+1)*a.Rank], h)
		}
	default:
		return nil, fmt.Errorf("adapter: unknown kind %q", a.Kind)
	}
	vec.Normalize(z)
	return z, nil
}

// ApplyQuery maps a query vector (queries always pass through the adapter).
func (a *Adapter) ApplyQuery(x []float32) ([]float32, error) { return a.Apply(x) }

// ErrTowerVectors is returned when a Tower adapter is asked to map a query vector: a tuned
// tower embeds query texts itself (Wrap it around the base encoder instead).
var ErrTowerVectors = errors.New("adapter: a query tower embeds texts, not base vectors: encode the queries with it")

// ApplyDoc maps an episode vector: through the adapter when BothSides, else a unit-length copy.
// A BothSides tower cannot map base vectors (ErrTowerVectors): it embeds episode texts.
func (a *Adapter) ApplyDoc(x []float32) ([]float32, error) {
	if a.BothSides {
		return a.Apply(x)
	}
	if len(x) != a.Dim {
		return nil, fmt.Errorf("adapter: vector of length %d, want %d", len(x), a.Dim)
	}
	z := append([]float32(nil), x...)
	vec.Normalize(z)
	return z, nil
}

// ApplyAll maps many vectors, queries (doc false) or episodes (doc true).
func (a *Adapter) ApplyAll(xs [][]float32, doc bool) ([][]float32, error) {
	out := make([][]float32, len(xs))
	for i, x := range xs {
		var err error
		if doc {
			out[i], err = a.ApplyDoc(x)
		} else {
			out[i], err = a.ApplyQuery(x)
		}
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// Fingerprint is the tuned model's fingerprint: hex sha256 of the base fingerprint followed
// by the adapter's canonical bytes (shape line and float32 parameters).
func (a *Adapter) Fingerprint() string {
	if a.Kind == Tower && a.Tower != nil {
		return a.Tower.fingerprint
	}
	h := sha256.New()
	h.Write([]byte(a.BaseFingerprint))
	h.Write(a.canonicalBytes())
	return hex.EncodeToString(h.Sum(nil))
}

// DocFingerprint is the fingerprint of episode vectors: the tuned one when BothSides, else
// the base model's (episode vectors are then the base encoder's own).
func (a *Adapter) DocFingerprint() string {
	if a.BothSides {
		return a.Fingerprint()
	}
	return a.BaseFingerprint
}

func (a *Adapter) canonicalBytes() []byte {
	shape := fmt.Sprintf("%s dim=%d rank=%d both=%t\n", a.Kind, a.Dim, a.Rank, a.BothSides)
	params := a.params()
	b := make([]byte, 0, len(shape)+4*len(params))
	b = append(b, shape...)
	for _, p := range params {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(p))
	}
	return b
}

// params returns the parameters in file order.
func (a *Adapter) params() []float32 {
	if a.Kind == LowRank {
		out := make([]float32, 0, len(a.U)+len(a.V))
		return append(append(out, a.U...), a.V...)
	}
	return a.W
}

// paramCount is the number of float32 parameters the shape needs.
func (a *Adapter) paramCount() (int, error) {
	if a.Dim < 1 || a.Dim > 1<<14 {
		return 0, fmt.Errorf("adapter: dim %d out of range", a.Dim)
	}
	switch a.Kind {
	case Linear:
		return a.Dim * a.Dim, nil
	case LowRank:
		if a.Rank < 1 || a.Rank > a.Dim {
			return 0, fmt.Errorf("adapter: rank %d out of range [1, %d]", a.Rank, a.Dim)
		}
		return 2 * a.Dim * a.Rank, nil
	default:
		return 0, fmt.Errorf("adapter: unknown kind %q", a.Kind)
	}
}

// ErrFingerprint is returned when an adapter meets vectors of a model it was not trained on.
var ErrFingerprint = errors.New("adapter: base model fingerprint mismatch")
