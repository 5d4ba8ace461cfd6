package pairs

import "testing"

// BenchmarkGenerateDemo fits the three generators and makes 3 pairs per episode for the
// demo corpus: the work of `podsearch pairs` minus file I/O.
func BenchmarkGenerateDemo(b *testing.B) {
	eps := demoCorpus(b)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		ps, _ := Generate(eps, DefaultGenerators(eps, 42), 3, nil)
		SplitByEpisode(ps, 0.01, 0.19, 42)
	}
}
