package metrics

import (
	"math"
	"testing"
)

func near(t *testing.T, what string, got, want float64) {
	t.Helper()
	if math.Abs(got-want) > 1e-12 {
		t.Errorf("%s = %.15f, want %.15f", what, got, want)
	}
}

// Hand-computed cases. Ranking a b c d e; relevant: b (grade 2), d (grade 1), z (grade 1,
// never retrieved), x (grade 0: judged non-relevant).
func TestHandComputed(t *testing.T) {
	ranked := []string{"a", "b", "c", "d", "e"}
	rel := Qrels{"b": 2, "d": 1, "z": 1, "x": 0}

	// First relevant at rank 2.
	near(t, "mrr@1", ReciprocalRank(ranked, rel, 1), 0)
	near(t, "mrr@2", ReciprocalRank(ranked, rel, 2), 0.5)
	near(t, "mrr@10", ReciprocalRank(ranked, rel, 10), 0.5)

	// Three relevant documents; b in top 2, b and d in top 4.
	near(t, "recall@1", Recall(ranked, rel, 1), 0)
	near(t, "recall@2", Recall(ranked, rel, 2), 1.0/3)
	near(t, "recall@4", Recall(ranked, rel, 4), 2.0/3)
	near(t, "recall@100", Recall(ranked, rel, 100), 2.0/3)

	near(t, "hit@1", Hit(ranked, rel, 1), 0)
	near(t, "hit@2", Hit(ranked, rel, 2), 1)

	// DCG@5 = 2/log2(3) + 1/log2(5) = 1.261859507 + 0.430676558 = 1.692536065
	// IDCG@5 = 2/log2(2) + 1/log2(3) + 1/log2(4) = 2 + 0.630929754 + 0.5 = 3.130929754
	near(t, "ndcg@5", NDCG(ranked, rel, 5), (2/math.Log2(3)+1/math.Log2(5))/(2+1/math.Log2(3)+0.5))
	near(t, "ndcg@5 value", math.Round(NDCG(ranked, rel, 5)*1e9)/1e9, 0.540585768)
	// nDCG@1: nothing relevant at rank 1.
	near(t, "ndcg@1", NDCG(ranked, rel, 1), 0)
	// nDCG@2 = (2/log2 3) / (2 + 1/log2 3)
	near(t, "ndcg@2", NDCG(ranked, rel, 2), (2/math.Log2(3))/(2+1/math.Log2(3)))
}

func TestPerfectAndEmpty(t *testing.T) {
	rel := Qrels{"a": 3, "b": 1}
	near(t, "perfect ndcg", NDCG([]string{"a", "b", "c"}, rel, 10), 1)
	// Swapped order: DCG = 1 + 3/log2(3); IDCG = 3 + 1/log2(3).
	near(t, "swapped ndcg", NDCG([]string{"b", "a"}, rel, 10), (1+3/math.Log2(3))/(3+1/math.Log2(3)))
	near(t, "no relevant ndcg", NDCG([]string{"a"}, Qrels{"a": 0}, 10), 0)
	near(t, "no relevant recall", Recall([]string{"a"}, Qrels{}, 10), 0)
	near(t, "empty ranking mrr", ReciprocalRank(nil, rel, 10), 0)
	near(t, "empty ranking ndcg", NDCG(nil, rel, 10), 0)
}

func TestMeanAndParse(t *testing.T) {
	ms := MustParseAll("mrr@2", "recall@1", "ndcg@10", "hit@1")
	if MaxK(ms) != 10 {
		t.Fatalf("MaxK = %d", MaxK(ms))
	}
	mean := NewMean(ms)
	mean.Add([]string{"a", "b"}, Qrels{"b": 1}) // rr 0.5, recall@1 0, hit@1 0
	mean.Add([]string{"a", "b"}, Qrels{"a": 1}) // rr 1, recall@1 1, hit@1 1
	v := mean.Values()
	near(t, "mean mrr@2", v["mrr@2"], 0.75)
	near(t, "mean recall@1", v["recall@1"], 0.5)
	near(t, "mean hit@1", v["hit@1"], 0.5)
	// ndcg: (1/log2 3 + 1)/2
	near(t, "mean ndcg@10", v["ndcg@10"], (1/math.Log2(3)+1)/2)
	if mean.N() != 2 {
		t.Errorf("N = %d", mean.N())
	}
	if got := NewMean(ms).Values()["mrr@2"]; got != 0 {
		t.Errorf("empty mean = %v", got)
	}
	for _, bad := range []string{"", "mrr", "mrr@0", "mrr@x", "map@10", "@3"} {
		if _, err := Parse(bad); err == nil {
			t.Errorf("Parse(%q) accepted", bad)
		}
	}
	if m, err := Parse(" NDCG@10 "); err != nil || m.String() != "ndcg@10" {
		t.Errorf("Parse = %v, %v", m, err)
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"ndcg@10", "mrr@5", "recall@100", "hit@1", "x@", "@@", "mrr@-1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		m, err := Parse(s)
		if err != nil {
			return
		}
		if m.K < 1 {
			t.Fatalf("Parse(%q) gave k %d", s, m.K)
		}
		if again, err := Parse(m.String()); err != nil || again != m {
			t.Fatalf("round trip of %q: %v %v", s, again, err)
		}
	})
}
