package index

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Upper bounds of the numbers in a factory string, far above any useful index, so that a
// typo fails at parse time rather than as an allocation of terabytes.
const (
	maxFactoryNList = 1 << 24
	maxFactoryM     = 1 << 16
	maxFactoryBytes = 1 << 20
)

// ParseConfig reads a FAISS-style factory string, the names the benchmarks print and the
// manifest records (Config.String, Model.String): comma-separated components, each at most
// once and in any order, case-sensitive but for the metric:
//
//	IVF | IVF<n>                 inverted lists: n, or the default (4*sqrt(n), at most n/39)
//	PQ[<m>][x<bits>][fs]         product quantizer: m sub-quantizers (default d/4 for 4-bit,
//	                             d/8 for 8-bit) of 4 (fast scan, "fs") or 8 bits (default 4);
//	                             fs alone means 4 bits
//	SQ8 | SQ4                    re-rank with 8- or 4-bit scalar-quantized codes (default SQ8)
//	TQ | TQ<bytes>               re-rank with transform-quantized codes of at most bytes
//	                             (default DefaultRerankBytes)
//	RFlat                        re-rank with the exact float32 vectors
//	none | noRerank              no re-ranking
//	cosine | ip | l2             the metric (ParseMetric; default cosine)
//
// Absent components keep Config's zero value (the defaults), so "IVF,PQ" is the zero Config
// and "IVF270,PQ128x4fs,TQ224,cosine" the default build of `podsearch index` over 10,548
// 512-d vectors. The training settings (TrainSize, Iters, Seed) and Fingerprint have no
// component.
func ParseConfig(s string) (Config, error) {
	var c Config
	if strings.TrimSpace(s) == "" {
		return c, errors.New("index: empty configuration")
	}
	seen := map[string]bool{}
	once := func(kind, part string) error {
		if seen[kind] {
			return fmt.Errorf("index: configuration %q: a second %s component %q", s, kind, part)
		}
		seen[kind] = true
		return nil
	}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		var kind string
		var err error
		switch {
		case strings.HasPrefix(part, "IVF"):
			kind = "IVF"
			c.NList, err = factoryNumber(part[3:], 0, maxFactoryNList)
		case strings.HasPrefix(part, "PQ"):
			kind = "PQ"
			c.M, c.Bits, err = parsePQ(part[2:])
		case part == "SQ8", part == "SQ4", part == "RFlat", part == "none", part == "noRerank":
			kind = "re-rank"
			c.Rerank = map[string]Rerank{"SQ8": RerankSQ8, "SQ4": RerankSQ4, "RFlat": RerankFlat, "none": RerankNone, "noRerank": RerankNone}[part]
		case strings.HasPrefix(part, "TQ"):
			kind = "re-rank"
			c.Rerank = RerankTQ
			c.RerankBytes, err = factoryNumber(part[2:], 0, maxFactoryBytes)
		default:
			kind = "metric"
			if c.Metric, err = ParseMetric(part); err != nil {
				return Config{}, fmt.Errorf("index: configuration %q: unknown component %q (want IVF<n>, PQ<m>x<bits>[fs], SQ8, SQ4, TQ<bytes>, RFlat, none, or a metric: cosine, ip, l2)", s, part)
			}
		}
		if err != nil {
			return Config{}, fmt.Errorf("index: configuration %q: component %q: %v", s, part, err)
		}
		if err := once(kind, part); err != nil {
			return Config{}, err
		}
	}
	return c, nil
}

// parsePQ reads the part of a PQ component after "PQ": [<m>][x<bits>][fs].
func parsePQ(s string) (m, bits int, err error) {
	fs := strings.HasSuffix(s, "fs")
	s = strings.TrimSuffix(s, "fs")
	mStr, bitsStr, hasBits := strings.Cut(s, "x")
	if m, err = factoryNumber(mStr, 0, maxFactoryM); err != nil {
		return 0, 0, err
	}
	if hasBits {
		if bits, err = factoryNumber(bitsStr, 1, 8); err != nil {
			return 0, 0, err
		}
		if bits != 4 && bits != 8 {
			return 0, 0, fmt.Errorf("PQ bits %d, want 4 or 8", bits)
		}
	}
	if fs {
		if bits == 8 {
			return 0, 0, errors.New("fast scan (fs) needs 4-bit codes")
		}
		bits = 4
	}
	return m, bits, nil
}

// factoryNumber reads the decimal digits of a component: "" is 0 (the default), anything
// else a number from lo to hi.
func factoryNumber(s string, lo, hi int) (int, error) {
	if s == "" {
		return 0, nil
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return 0, fmt.Errorf("%q is not a number", s)
		}
	}
	v, err := strconv.Atoi(s)
	if err != nil || v < max(lo, 1) || v > hi {
		return 0, fmt.Errorf("%s is out of range (%d..%d)", s, max(lo, 1), hi)
	}
	return v, nil
}

// String names the configuration's shape as ParseConfig reads it: IVF and PQ components
// always (without their numbers where they are defaults), the re-rank and the metric when
// set, e.g. "IVF,PQ" for the zero Config and "IVF270,PQ128x4fs,SQ8,cosine" for a trained
// Model's. ParseConfig(c.String()) gives c back but for TrainSize, Iters, Seed and
// Fingerprint.
func (c Config) String() string {
	var b strings.Builder
	b.WriteString("IVF")
	if c.NList != 0 {
		b.WriteString(strconv.Itoa(c.NList))
	}
	b.WriteString(",PQ")
	if c.M != 0 {
		b.WriteString(strconv.Itoa(c.M))
	}
	if c.Bits != 0 {
		fmt.Fprintf(&b, "x%d", c.Bits)
	}
	if c.Bits == 4 {
		b.WriteString("fs")
	}
	switch c.Rerank {
	case RerankDefault:
	case RerankTQ:
		b.WriteString(",TQ")
		if c.RerankBytes != 0 {
			b.WriteString(strconv.Itoa(c.RerankBytes))
		}
	default:
		b.WriteString("," + c.Rerank.String())
	}
	if c.Metric != 0 {
		b.WriteString("," + c.Metric.String())
	}
	return b.String()
}

// String names the re-rank kind as a factory component: "SQ8", "SQ4", "TQ", "RFlat",
// "noRerank", or "default" for RerankDefault.
func (r Rerank) String() string {
	switch r {
	case RerankDefault:
		return "default"
	case RerankSQ8:
		return "SQ8"
	case RerankSQ4:
		return "SQ4"
	case RerankTQ:
		return "TQ"
	case RerankFlat:
		return "RFlat"
	case RerankNone:
		return "noRerank"
	}
	return fmt.Sprintf("rerank(%d)", uint8(r))
}
