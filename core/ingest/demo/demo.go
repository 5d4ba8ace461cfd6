package demo

import (
	"github.com/podsearch/podsearch/core/ingest"
	demodata "github.com/podsearch/podsearch/data"
)

// Batches reads the bundled demo corpus (package data): the Taddy sample through
// ingest.DefaultJSONLMapping and the 8 RSS feeds, one Batch each, Taddy first.
func Batches() ([]*ingest.Batch, error) {
	names := append([]string{demodata.TaddyFile}, demodata.Feeds()...)
	out := make([]*ingest.Batch, 0, len(names))
	for i, name := range names {
		rc, err := demodata.Open(name)
		if err != nil {
			return nil, err
		}
		var b *ingest.Batch
		if i == 0 {
			b, err = ingest.ReadJSONL(rc, demodata.BaseName(name), ingest.DefaultJSONLMapping)
		} else {
			b, err = ingest.ReadRSS(rc, demodata.BaseName(name))
		}
		rc.Close()
		if err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	return out, nil
}

// Corpus builds the bundled demo corpus in memory with default options (seed 42): the
// episodes `podsearch ingest --demo` writes, for commands that index it without a file.
func Corpus() ([]ingest.Episode, error) {
	batches, err := Batches()
	if err != nil {
		return nil, err
	}
	res, err := ingest.Build(batches, ingest.Options{Seed: 42})
	if err != nil {
		return nil, err
	}
	return res.Episodes, nil
}
