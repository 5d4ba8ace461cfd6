package bm25

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"hash/crc32"
	"math"
	"os"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/podsearch/podsearch/internal/testenv"
)

func TestAnalyze(t *testing.T) {
	got := Analyze("The Stories of PODCASTS, running wild! 東京 2024-fixes")
	want := []string{"stori", "podcast", "run", "wild", "東", "京", "2024", "fix"}
	if !slices.Equal(got, want) {
		t.Fatalf("Analyze = %q, want %q", got, want)
	}
	for in, out := range map[string]string{"classes": "class", "bus": "bus", "quickly": "quick", "gas": "gas",
		"holidays": "holiday", "holiday": "holiday", "eating": "eat", "eats": "eat", "stories": "stori", "story": "stori", "niños": "niño"} {
		if s := Stem(in); s != out {
			t.Errorf("Stem(%q) = %q, want %q", in, s, out)
		}
	}
}

type scifact struct {
	ids     []string
	texts   []string
	queries map[string]string
	qrels   map[string]map[string]bool
}

func loadSciFact(t *testing.T) *scifact {
	t.Helper()
	dir := testenv.Shared(t, "data/beir/scifact")
	sf := &scifact{queries: map[string]string{}, qrels: map[string]map[string]bool{}}
	readJSONL(t, dir+"/corpus.jsonl", func(m map[string]any) {
		sf.ids = append(sf.ids, m["_id"].(string))
		sf.texts = append(sf.texts, m["title"].(string)+" "+m["text"].(string))
	})
	readJSONL(t, dir+"/queries.jsonl", func(m map[string]any) { sf.queries[m["_id"].(string)] = m["text"].(string) })
	f, err := os.Open(dir + "/qrels/test.tsv")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Scan() // header
	for sc.Scan() {
		p := strings.Split(sc.Text(), "\t")
		if len(p) == 3 && p[2] != "0" {
			if sf.qrels[p[0]] == nil {
				sf.qrels[p[0]] = map[string]bool{}
			}
			sf.qrels[p[0]][p[1]] = true
		}
	}
	return sf
}

func readJSONL(t *testing.T, path string, f func(map[string]any)) {
	t.Helper()
	fh, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	sc := bufio.NewScanner(fh)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatal(err)
		}
		f(m)
	}
}

type hit struct {
	id    string
	score float32
}

func search(s *Scorer, q string, ids [][]string) []hit {
	var hits []hit
	s.Score(q, func(v int, d uint32, sc float32) { hits = append(hits, hit{ids[v][d], sc}) })
	sort.Slice(hits, func(i, j int) bool {
		if hits[i].score != hits[j].score {
			return hits[i].score > hits[j].score
		}
		return hits[i].id < hits[j].id
	})
	return hits
}

// TestSciFactNDCG measures nDCG@10 on SciFact's 300 test queries: with the Snowball stemmer
// it gives 0.679 (Pyserini's BM25-flat figure; the BEIR paper's 0.665 used another analyzer);
// a broken analyzer or formula falls below.
func TestSciFactNDCG(t *testing.T) {
	sf := loadSciFact(t)
	b := NewBuilder()
	for _, text := range sf.texts {
		b.Add(text)
	}
	seg := b.Build()
	s := NewScorer([]View{{Seg: seg}}, DefaultParams)
	var sum float64
	for qid, rel := range sf.qrels {
		hits := search(s, sf.queries[qid], [][]string{sf.ids})
		var dcg, idcg float64
		for i := 0; i < 10 && i < len(hits); i++ {
			if rel[hits[i].id] {
				dcg += 1 / math.Log2(float64(i+2))
			}
		}
		for i := 0; i < 10 && i < len(rel); i++ {
			idcg += 1 / math.Log2(float64(i+2))
		}
		sum += dcg / idcg
	}
	ndcg := sum / float64(len(sf.qrels))
	t.Logf("SciFact nDCG@10 = %.3f over %d queries", ndcg, len(sf.qrels))
	if ndcg < 0.67 {
		t.Fatalf("nDCG@10 %.3f is below BM25's 0.679 with this analyzer", ndcg)
	}
}

// TestSegmentsDeletesMergeAndEncoding checks that splitting the corpus into segments, deleting
// documents, merging and encoding never change a score.
func TestSegmentsDeletesMergeAndEncoding(t *testing.T) {
	sf := loadSciFact(t)
	n := 1200
	texts, ids := sf.texts[:n], sf.ids[:n]
	deleted := func(i int) bool { return i%7 == 3 }
	// Reference: one segment of the live documents only.
	var liveIDs []string
	ref := NewBuilder()
	for i, tx := range texts {
		if !deleted(i) {
			ref.Add(tx)
			liveIDs = append(liveIDs, ids[i])
		}
	}
	refScorer := NewScorer([]View{{Seg: ref.Build()}}, DefaultParams)
	// Three segments holding every document, with tombstones.
	var views []View
	var viewIDs [][]string
	var segs []*Segment
	for start := 0; start < n; start += 400 {
		b := NewBuilder()
		for i := start; i < start+400; i++ {
			b.Add(texts[i])
		}
		seg := b.Build()
		raw, err := seg.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		seg, err = Unmarshal(raw)
		if err != nil {
			t.Fatal(err)
		}
		base := start
		segs = append(segs, seg)
		views = append(views, View{Seg: seg, Deleted: func(d uint32) bool { return deleted(base + int(d)) }})
		viewIDs = append(viewIDs, ids[start:start+400])
	}
	split := NewScorer(views, DefaultParams)
	newNum := map[int]uint32{}
	for i := 0; i < n; i++ {
		if !deleted(i) {
			newNum[i] = uint32(len(newNum))
		}
	}
	merged, err := Merge(segs, len(newNum), func(si int, d uint32) (uint32, bool) {
		nd, ok := newNum[si*400+int(d)]
		return nd, ok
	})
	if err != nil {
		t.Fatal(err)
	}
	mergedScorer := NewScorer([]View{{Seg: merged}}, DefaultParams)
	global := ComputeStats(views)
	raw, err := global.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if global, err = UnmarshalStats(raw); err != nil {
		t.Fatal(err)
	}
	if global.Docs != len(liveIDs) {
		t.Fatalf("statistics count %d live documents, want %d", global.Docs, len(liveIDs))
	}
	checked := 0
	for _, q := range sf.queries {
		want := search(refScorer, q, [][]string{liveIDs})
		if got := search(split, q, viewIDs); !slices.Equal(got, want) {
			t.Fatalf("query %q: segmented scores differ from one segment", q)
		}
		if got := search(mergedScorer, q, [][]string{liveIDs}); !slices.Equal(got, want) {
			t.Fatalf("query %q: merged scores differ", q)
		}
		// A node serving one segment, scoring with the whole corpus's statistics, gives
		// its documents the scores the whole corpus gives them.
		for vi := range views {
			part := NewScorerWithStats(views[vi:vi+1], DefaultParams, global)
			var sub []hit
			for _, h := range want {
				if slices.Contains(viewIDs[vi], h.id) {
					sub = append(sub, h)
				}
			}
			if got := search(part, q, viewIDs[vi:vi+1]); !slices.Equal(got, sub) {
				t.Fatalf("query %q: segment %d with global statistics differs", q, vi)
			}
		}
		if checked++; checked == 40 {
			break
		}
	}
}

func FuzzUnmarshal(f *testing.F) {
	b := NewBuilder()
	b.Add("the quick brown fox jumps")
	b.Add("lazy dogs and quick foxes")
	raw, _ := b.Build().MarshalBinary()
	f.Add(raw)
	f.Add([]byte(segMagic))
	f.Add(raw[:len(raw)-3])
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := Unmarshal(data)
		if err != nil {
			return
		}
		// A segment that decodes must be usable.
		NewScorer([]View{{Seg: s}}, DefaultParams).Score("quick fox", func(int, uint32, float32) {})
		if again, err := s.MarshalBinary(); err != nil || !slices.Equal(again, data) {
			t.Fatalf("re-encoding differs: %v", err)
		}
	})
}

// FuzzUnmarshalStats feeds the decoder arbitrary bytes, and the same bytes sealed with
// their correct checksum (so that mutations reach the parser behind the checksum): what
// decodes must re-encode to the same bytes.
func FuzzUnmarshalStats(f *testing.F) {
	b := NewBuilder()
	b.Add("the quick brown fox jumps")
	b.Add("lazy dogs and quick foxes")
	raw, _ := ComputeStats([]View{{Seg: b.Build()}}).MarshalBinary()
	f.Add(raw)
	f.Add(raw[:len(raw)-4]) // the body: sealed, it is raw again
	f.Add([]byte(statsMagic))
	f.Add(raw[:len(raw)-3])
	f.Add(append([]byte(statsMagicV1), raw[8:len(raw)-4]...))
	f.Fuzz(func(t *testing.T, data []byte) {
		sealed := binary.LittleEndian.AppendUint32(slices.Clip(data), crc32.Checksum(data, crcTable))
		for _, in := range [][]byte{data, sealed} {
			st, err := UnmarshalStats(in)
			if err != nil {
				continue
			}
			if again, err := st.MarshalBinary(); err != nil || !slices.Equal(again, in) {
				t.Fatalf("re-encoding differs: %v", err)
			}
		}
	})
}
