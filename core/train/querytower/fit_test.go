package querytower

import (
	"testing"

	"github.com/podsearch/podsearch/core/tower"
)

// TestSample keeps the first n pairs with their keys and groups, and all the episode
// vectors; data with fewer pairs comes back whole.
func TestSample(t *testing.T) {
	d := tower.Data{QueryIDs: [][]int32{{1}, {2}, {3}}, QueryKeys: []string{"a", "b", "c"},
		Episodes: [][]float32{{1}, {2}}, EpisodeOf: []int{0, 1, 1}, EpisodeGroup: []int{0, 1, 1}}
	s := Sample(d, 2)
	if len(s.QueryIDs) != 2 || len(s.QueryKeys) != 2 || len(s.EpisodeOf) != 2 || len(s.EpisodeGroup) != 2 || len(s.Episodes) != 2 {
		t.Fatalf("sample %+v", s)
	}
	d.QueryKeys, d.EpisodeGroup = nil, nil
	if s := Sample(d, 2); s.QueryKeys != nil || s.EpisodeGroup != nil {
		t.Fatalf("sample of data without keys or groups %+v", s)
	}
	if s := Sample(d, 5); len(s.QueryIDs) != 3 {
		t.Fatalf("sample of 5 from 3 pairs: %d", len(s.QueryIDs))
	}
}
