package pairs

import (
	"fmt"
	"math/rand/v2"
	"strings"
)

// Split names.
const (
	SplitTrain = "train"
	SplitEval  = "eval"
	SplitTest  = "test"
)

// The defaults of `podsearch pairs`, which an index build's query sample
// (core/indexbuild) uses too: the seed of the sentence choice and of the split, pairs per
// episode, and the fractions of episodes for eval and test.
const (
	DefaultSeed       = 42
	DefaultPerEpisode = 3
	DefaultEvalFrac   = 0.01
	DefaultTestFrac   = 0.19
)

// Splits holds the three sets of pairs.
type Splits struct {
	Train, Eval, Test []Pair
	Stats             SplitStats
}

// SplitStats counts each split.
type SplitStats struct {
	// Episodes per split; an episode is in exactly one.
	Episodes map[string]int `json:"episodes"`
	// Pairs per split and method.
	Pairs map[string]map[string]int `json:"pairs"`
	// DroppedRepeatPairs counts eval/test pairs left out because the episode already had
	// one there; DroppedRepeatQueries those left out because their query was already used.
	DroppedRepeatPairs   int `json:"dropped_repeat_pairs"`
	DroppedRepeatQueries int `json:"dropped_repeat_queries"`
}

// SplitByEpisode assigns whole episodes to test (testFrac of them, rounded down), eval
// (evalFrac, rounded down) and train (the rest), after a shuffle fixed by seed, as the
// reference article splits 19% / 1% / 80%. Train keeps all pairs of its episodes. Eval and
// test keep one pair per episode, the method chosen in turn so that all methods are
// represented, and never the same query twice: an in-batch ranking evaluation must not see
// one episode, or one query, twice.
func SplitByEpisode(pairs []Pair, evalFrac, testFrac float64, seed uint64) Splits {
	var ids []string
	byEp := map[string][]Pair{}
	for _, p := range pairs {
		if _, ok := byEp[p.EpisodeID]; !ok {
			ids = append(ids, p.EpisodeID)
		}
		byEp[p.EpisodeID] = append(byEp[p.EpisodeID], p)
	}
	rng := rand.New(rand.NewPCG(seed, 0x5851f42d4c957f2d))
	rng.Shuffle(len(ids), func(i, j int) { ids[i], ids[j] = ids[j], ids[i] })
	nTest := int(testFrac * float64(len(ids)))
	nEval := int(evalFrac * float64(len(ids)))
	var s Splits
	s.Stats = SplitStats{Episodes: map[string]int{}, Pairs: map[string]map[string]int{
		SplitTrain: {}, SplitEval: {}, SplitTest: {}}}
	methods := methodOrder(pairs)
	usedQuery := map[string]map[string]bool{SplitEval: {}, SplitTest: {}}
	for i, id := range ids {
		name := SplitTrain
		switch {
		case i < nTest:
			name = SplitTest
		case i < nTest+nEval:
			name = SplitEval
		}
		s.Stats.Episodes[name]++
		eps := byEp[id]
		if name == SplitTrain {
			s.Train = append(s.Train, eps...)
			for _, p := range eps {
				s.Stats.Pairs[name][p.Method]++
			}
			continue
		}
		p, ok := pickOne(eps, methods, i, usedQuery[name])
		s.Stats.DroppedRepeatPairs += len(eps) - 1
		if !ok {
			s.Stats.DroppedRepeatQueries++
			continue
		}
		usedQuery[name][strings.ToLower(p.Query)] = true
		s.Stats.Pairs[name][p.Method]++
		if name == SplitTest {
			s.Test = append(s.Test, p)
		} else {
			s.Eval = append(s.Eval, p)
		}
	}
	return s
}

// pickOne chooses an episode's pair for eval or test: preferring the method whose turn it
// is (turn i), then the others in order, skipping queries already used in the split.
func pickOne(eps []Pair, methods []string, turn int, used map[string]bool) (Pair, bool) {
	for k := range methods {
		want := methods[(turn+k)%len(methods)]
		for _, p := range eps {
			if p.Method == want && !used[strings.ToLower(p.Query)] {
				return p, true
			}
		}
	}
	return Pair{}, false
}

// methodOrder lists the methods in the order they first occur.
func methodOrder(pairs []Pair) []string {
	var out []string
	seen := map[string]bool{}
	for _, p := range pairs {
		if !seen[p.Method] {
			seen[p.Method] = true
			out = append(out, p.Method)
		}
	}
	return out
}

// String is the stats line: episodes and pairs per split, pairs per method.
func (s SplitStats) String() string {
	var parts []string
	for _, name := range []string{SplitTrain, SplitEval, SplitTest} {
		total := 0
		for _, n := range s.Pairs[name] {
			total += n
		}
		parts = append(parts, fmt.Sprintf("%s: %d episodes, %d pairs (%s)", name,
			s.Episodes[name], total, formatCounts(s.Pairs[name])))
	}
	return strings.Join(parts, "; ") + fmt.Sprintf("; eval/test kept one pair per episode "+
		"(%d other pairs left out, %d episodes left out for a repeated query)",
		s.DroppedRepeatPairs, s.DroppedRepeatQueries)
}
