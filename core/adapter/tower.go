package adapter

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"sort"

	"github.com/advancedclimatesystems/gonnx/onnx"
	"google.golang.org/protobuf/proto"
)

// Tower is a fine-tuned copy of the encoder that embeds queries (core/tower's training),
// stored as an ONNX model; episode vectors stay the base encoder's, unless the tower is
// BothSides (both towers trained: it embeds episodes too, and indexes must be rebuilt with it).
const Tower Kind = "tower"

// ONNX metadata keys of a tuned tower file.
const (
	metaKind     = "podsearch.kind"
	metaBase     = "podsearch.base_fingerprint"
	metaFinger   = "podsearch.fingerprint"
	metaNotes    = "podsearch.notes"
	towerKindTag = "query-tower"
	// bothKindTag marks a tower that embeds episodes too (both towers trained).
	bothKindTag = "tower-both-sides"
)

// TowerModel is the ONNX model of a tuned query tower.
type TowerModel struct {
	// ONNX is the model file's bytes (the exported graph with the podsearch metadata).
	ONNX []byte
	// Path is the file the tower was loaded from (empty when built in memory); encoders
	// open it to embed queries.
	Path        string
	fingerprint string
}

// towerFingerprint is sha256(base fingerprint + weights): the hex digest of the base
// fingerprint followed by every initializer of the graph in order (name, dims and float32
// values, little-endian). A both-sides tower (tag bothKindTag) hashes a marker first, so the
// same weights as a query tower never share its fingerprint.
func towerFingerprint(tag, base string, m *onnx.ModelProto) string {
	h := sha256.New()
	if tag == bothKindTag {
		h.Write([]byte(bothKindTag + "\n"))
	}
	h.Write([]byte(base))
	var b []byte
	for _, t := range m.GetGraph().GetInitializer() {
		b = append(b[:0], t.GetName()...)
		b = append(b, 0)
		for _, d := range t.GetDims() {
			b = binary.LittleEndian.AppendUint64(b, uint64(d))
		}
		for _, v := range t.GetFloatData() {
			b = binary.LittleEndian.AppendUint32(b, math.Float32bits(v))
		}
		for _, v := range t.GetInt64Data() {
			b = binary.LittleEndian.AppendUint64(b, uint64(v))
		}
		b = append(b, t.GetRawData()...)
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// NewTower wraps the ONNX export of a tuned query tower (core/model.Export of the tuned
// weights) as an adapter of kind Tower for the base model baseFingerprint, recording both
// fingerprints and notes in the model's metadata. bothSides marks a tower trained on both
// sides, which embeds episodes too.
func NewTower(onnxBytes []byte, baseFingerprint string, bothSides bool, notes map[string]any) (*Adapter, error) {
	var m onnx.ModelProto
	if err := proto.Unmarshal(onnxBytes, &m); err != nil {
		return nil, fmt.Errorf("adapter: tower model: %w", err)
	}
	if len(m.GetGraph().GetInitializer()) == 0 {
		return nil, fmt.Errorf("adapter: tower model has no weights")
	}
	tag := towerKindTag
	if bothSides {
		tag = bothKindTag
	}
	fp := towerFingerprint(tag, baseFingerprint, &m)
	nb, err := json.Marshal(notes)
	if err != nil {
		return nil, fmt.Errorf("adapter: tower notes: %w", err)
	}
	m.MetadataProps = []*onnx.StringStringEntryProto{
		{Key: metaKind, Value: tag},
		{Key: metaBase, Value: baseFingerprint},
		{Key: metaFinger, Value: fp},
		{Key: metaNotes, Value: string(nb)},
	}
	sort.Slice(m.MetadataProps, func(i, j int) bool { return m.MetadataProps[i].Key < m.MetadataProps[j].Key })
	out, err := proto.MarshalOptions{Deterministic: true}.Marshal(&m)
	if err != nil {
		return nil, fmt.Errorf("adapter: tower model: %w", err)
	}
	return &Adapter{Kind: Tower, Dim: 512, BothSides: bothSides, BaseFingerprint: baseFingerprint, Notes: notes,
		Tower: &TowerModel{ONNX: out, fingerprint: fp}}, nil
}

// unmarshalTower decodes a tuned tower file (an ONNX model with podsearch metadata rather
// than an adapter file), checking its recorded fingerprint against its weights.
func unmarshalTower(b []byte) (*Adapter, error) {
	var m onnx.ModelProto
	if err := proto.Unmarshal(b, &m); err != nil || m.GetGraph() == nil {
		return nil, fmt.Errorf("adapter: not an adapter file (bad magic) nor an ONNX query tower")
	}
	meta := map[string]string{}
	for _, kv := range m.GetMetadataProps() {
		meta[kv.GetKey()] = kv.GetValue()
	}
	tag := meta[metaKind]
	if tag != towerKindTag && tag != bothKindTag {
		return nil, fmt.Errorf("adapter: an ONNX model without podsearch tower metadata (a base encoder export? pass a file written by `podsearch train`)")
	}
	base := meta[metaBase]
	if base == "" {
		return nil, fmt.Errorf("adapter: tower file records no base model fingerprint")
	}
	fp := towerFingerprint(tag, base, &m)
	if meta[metaFinger] != fp {
		return nil, fmt.Errorf("adapter: tower's recorded fingerprint %s does not match its weights (%s): the file is corrupted", short(meta[metaFinger]), short(fp))
	}
	var notes map[string]any
	if s := meta[metaNotes]; s != "" && s != "null" {
		if err := json.Unmarshal([]byte(s), &notes); err != nil {
			return nil, fmt.Errorf("adapter: tower notes: %w", err)
		}
	}
	return &Adapter{Kind: Tower, Dim: 512, BothSides: tag == bothKindTag, BaseFingerprint: base, Notes: notes,
		Tower: &TowerModel{ONNX: b, fingerprint: fp}}, nil
}
