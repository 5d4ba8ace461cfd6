package demo_test

import (
	"testing"

	"github.com/podsearch/podsearch/core/ingest"
	"github.com/podsearch/podsearch/core/ingest/demo"
)

// BenchmarkBuildDemo reads and builds the bundled demo corpus (10,924 records), language
// detection included: the work of `podsearch ingest --demo`.
func BenchmarkBuildDemo(b *testing.B) {
	for i := 0; i < b.N; i++ {
		bs, err := demo.Batches()
		if err != nil {
			b.Fatal(err)
		}
		if _, err := ingest.Build(bs, ingest.Options{Seed: 1}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDetectLanguage detects the language of the demo corpus's episode texts.
func BenchmarkDetectLanguage(b *testing.B) {
	bs, err := demo.Batches()
	if err != nil {
		b.Fatal(err)
	}
	res, err := ingest.Build(bs, ingest.Options{Seed: 1, Detect: func(string) string { return "en" }})
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for j := range res.Episodes {
			ingest.DetectLanguage(res.Episodes[j].Text)
		}
	}
}
