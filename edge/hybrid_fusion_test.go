package edge

import (
	"testing"

	"github.com/podsearch/podsearch/core/index"
)

// recordingSearcher is a Searcher over an index that records a calibrated fusion.
type recordingSearcher struct {
	Searcher
	f index.FusionSetting
}

func (r recordingSearcher) Fusion() index.FusionSetting { return r.f }

// TestHybridTakesTheIndexFusion: a node that fans out fuses its peers' rankings with the
// fusion its local index records unless its Config names another; a weight given alone
// applies to the recorded fusion.
func TestHybridTakesTheIndexFusion(t *testing.T) {
	local := recordingSearcher{f: index.FusionSetting{Fusion: index.ZScore, DenseWeight: 0.7}}
	cases := []struct {
		cfg  Config
		want index.HybridOptions
	}{
		{Config{}, index.HybridOptions{Fusion: index.ZScore, DenseWeight: 0.7}},
		{Config{DenseWeight: 0.2}, index.HybridOptions{Fusion: index.ZScore, DenseWeight: 0.2}},
		{Config{Fusion: "zscore"}, index.HybridOptions{Fusion: index.ZScore, DenseWeight: 0.7}},
		{Config{Fusion: "rrf"}, index.HybridOptions{Fusion: index.RRF}},
	}
	for i, c := range cases {
		if got := c.cfg.hybrid(local); got != c.want {
			t.Errorf("case %d: %+v, want %+v", i, got, c.want)
		}
	}
	// A searcher that records none (a keyword-only node, a test double): the index defaults.
	if got := (&Config{}).hybrid(nil); got != (index.HybridOptions{}) {
		t.Errorf("no recorded fusion: %+v, want zero options (the index defaults)", got)
	}
}
