package pairs

import (
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/podsearch/podsearch/core/ingest"
	"github.com/podsearch/podsearch/core/ingest/demo"
)

var (
	demoOnce sync.Once
	demoEps  []ingest.Episode
	demoErr  error
)

// demoCorpus builds the bundled demo corpus once per test binary. Languages do not matter
// to pairs, so a fixed answer replaces detection (the slowest step of ingest).
func demoCorpus(t testing.TB) []ingest.Episode {
	t.Helper()
	demoOnce.Do(func() {
		var bs []*ingest.Batch
		bs, demoErr = demo.Batches()
		if demoErr != nil {
			return
		}
		var res *ingest.Result
		res, demoErr = ingest.Build(bs, ingest.Options{Seed: 42, Detect: func(string) string { return "en" }})
		if demoErr == nil {
			demoEps = res.Episodes
		}
	})
	if demoErr != nil {
		t.Fatal(demoErr)
	}
	return demoEps
}

func TestDemoCorpusPairs(t *testing.T) {
	eps := demoCorpus(t)
	pairs, gst := Generate(eps, DefaultGenerators(eps, 42), 3, nil)
	t.Logf("generated: %s", gst)
	if gst.Episodes != len(eps) || gst.Pairs != len(pairs) {
		t.Fatalf("stats %s disagree with %d episodes, %d pairs", gst, len(eps), len(pairs))
	}
	perEp := map[string]int{}
	byMethod := map[string]int{}
	text := map[string]string{}
	for i := range eps {
		text[eps[i].ID] = eps[i].Text
	}
	for _, p := range pairs {
		perEp[p.EpisodeID]++
		byMethod[p.Method]++
		if p.Query == "" || p.Text == "" {
			t.Fatalf("empty pair %+v", p)
		}
		full, ok := text[p.EpisodeID]
		if !ok {
			t.Fatalf("pair for unknown episode %+v", p)
		}
		switch p.Method {
		case MethodInverseCloze:
			if strings.Contains(p.Text, p.Query) && !strings.Contains(strings.Replace(full, p.Query, "", 1), p.Query) {
				t.Fatalf("inverse cloze left its sentence in: %+v", p)
			}
		case MethodTitle:
			if p.Text == full {
				t.Fatalf("title pair kept the title in the text: %+v", p)
			}
		case MethodTFIDF:
			if p.Text != full || len(strings.Fields(p.Query)) > termsPerQuery {
				t.Fatalf("bad tfidf pair %+v", p)
			}
		default:
			t.Fatalf("unknown method %q", p.Method)
		}
	}
	if !reflect.DeepEqual(byMethod, gst.ByMethod) {
		t.Fatalf("by method %v, stats %v", byMethod, gst.ByMethod)
	}
	for _, m := range []string{MethodTitle, MethodInverseCloze, MethodTFIDF} {
		// Each method must make a real share of the demo corpus's pairs.
		if byMethod[m] < len(eps)/4 {
			t.Errorf("method %s made only %d pairs for %d episodes", m, byMethod[m], len(eps))
		}
	}
	for id, n := range perEp {
		if n > 3 {
			t.Fatalf("episode %s has %d pairs", id, n)
		}
	}
	if len(perEp) != len(eps)-gst.None {
		t.Fatalf("%d episodes with pairs, stats say %d", len(perEp), len(eps)-gst.None)
	}

	s := SplitByEpisode(pairs, 0.01, 0.19, 42)
	t.Logf("split: %s", s.Stats)
	dir := t.TempDir()
	files := map[string][]Pair{SplitTrain: s.Train, SplitEval: s.Eval, SplitTest: s.Test}
	where := map[string]string{}
	for name, ps := range files {
		back := ps
		if name != SplitTrain { // the small files make the round trip; train is 12 MB
			path := filepath.Join(dir, name+".jsonl")
			if err := WritePairs(path, ps); err != nil {
				t.Fatal(err)
			}
			var err error
			if back, err = ReadPairs(path); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(back, ps) {
				t.Fatalf("%s did not round-trip", name)
			}
		}
		queries := map[string]bool{}
		eps := map[string]bool{}
		for _, p := range back {
			if w, ok := where[p.EpisodeID]; ok && w != name {
				t.Fatalf("episode %s is in %s and %s", p.EpisodeID, w, name)
			}
			where[p.EpisodeID] = name
			if name != SplitTrain {
				q := strings.ToLower(p.Query)
				if eps[p.EpisodeID] || queries[q] {
					t.Fatalf("%s repeats episode %s or query %q", name, p.EpisodeID, p.Query)
				}
				eps[p.EpisodeID], queries[q] = true, true
			}
		}
	}
	n := len(perEp)
	if s.Stats.Episodes[SplitTest] != int(0.19*float64(n)) || s.Stats.Episodes[SplitEval] != int(0.01*float64(n)) ||
		s.Stats.Episodes[SplitTrain] != n-int(0.19*float64(n))-int(0.01*float64(n)) {
		t.Fatalf("split sizes %v for %d episodes", s.Stats.Episodes, n)
	}
	if len(s.Test)+s.Stats.DroppedRepeatQueries < s.Stats.Episodes[SplitTest] || len(s.Eval) == 0 {
		t.Fatalf("eval/test lost episodes: %s", s.Stats)
	}
	for _, name := range []string{SplitTrain, SplitTest} {
		for _, m := range []string{MethodTitle, MethodInverseCloze, MethodTFIDF} {
			if s.Stats.Pairs[name][m] == 0 {
				t.Errorf("%s has no %s pairs", name, m)
			}
		}
	}
}

func TestGenerateDeterministic(t *testing.T) {
	eps := demoCorpus(t)[:300]
	a, _ := Generate(eps, DefaultGenerators(eps, 7), 3, nil)
	b, _ := Generate(eps, DefaultGenerators(eps, 7), 3, nil)
	if !reflect.DeepEqual(a, b) {
		t.Fatal("same seed, different pairs")
	}
	sa, sb := SplitByEpisode(a, 0.1, 0.2, 1), SplitByEpisode(b, 0.1, 0.2, 1)
	if !reflect.DeepEqual(sa, sb) {
		t.Fatal("same seed, different split")
	}
}
