package ingest

import (
	demodata "github.com/podsearch/podsearch/data"
)

// ReadDemo reads the bundled demo corpus (package data): the Taddy sample through
// DefaultJSONLMapping and the 8 RSS feeds, one Batch each, Taddy first.
func ReadDemo() ([]*Batch, error) {
	names := append([]string{demodata.TaddyFile}, demodata.Feeds()...)
	out := make([]*Batch, 0, len(names))
	for i, name := range names {
		rc, err := demodata.Open(name)
		if err != nil {
			return nil, err
		}
		var b *Batch
		if i == 0 {
			b, err = ReadJSONL(rc, demodata.BaseName(name), DefaultJSONLMapping)
		} else {
			b, err = ReadRSS(rc, demodata.BaseName(name))
		}
		rc.Close()
		if err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	return out, nil
}

// DemoCorpus builds the bundled demo corpus in memory with default options (seed 42): the
// episodes `podsearch ingest --demo` writes, for commands that index it without a file.
func DemoCorpus() ([]Episode, error) {
	batches, err := ReadDemo()
	if err != nil {
		return nil, err
	}
	res, err := Build(batches, Options{Seed: 42})
	if err != nil {
		return nil, err
	}
	return res.Episodes, nil
}
