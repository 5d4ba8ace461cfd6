package textclean

import (
	"bufio"
	"encoding/json"
	"testing"

	demodata "github.com/podsearch/podsearch/data"
)

// BenchmarkClean cleans the real HTML descriptions of the bundled Taddy sample.
func BenchmarkClean(b *testing.B) {
	rc, err := demodata.Open(demodata.TaddyFile)
	if err != nil {
		b.Fatal(err)
	}
	defer rc.Close()
	var descs []string
	bytes := 0
	sc := bufio.NewScanner(rc)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		var row struct{ Description *string }
		if err := json.Unmarshal(sc.Bytes(), &row); err != nil {
			b.Fatal(err)
		}
		if row.Description != nil {
			descs = append(descs, *row.Description)
			bytes += len(*row.Description)
		}
	}
	b.SetBytes(int64(bytes))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for _, d := range descs {
			Clean(d)
		}
	}
}
