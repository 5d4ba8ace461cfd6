// Package demodata embeds the bundled demo corpus (see README.md beside this file): the
// real Taddy sample export (10,544 episodes, JSON Lines) and 8 real podcast RSS feeds, all
// gzip-compressed, so that podsearch can build a demo index with nothing but its binary.
//
// The package only hands out the files; package core/ingest/demo reads them (demo.Batches).
package demodata

import (
	"compress/gzip"
	"embed"
	"errors"
	"io"
	"io/fs"
	"path"
	"sort"
	"strings"
)

//go:embed demo/taddy_episodes.jsonl.gz demo/rss/*.xml.gz
var files embed.FS

// TaddyFile is the name of the Taddy sample (JSON Lines, gzip) inside the embedded files.
const TaddyFile = "demo/taddy_episodes.jsonl.gz"

// FeedDir is the folder of the RSS feeds (one .xml.gz each) inside the embedded files.
const FeedDir = "demo/rss"

// Feeds returns the names (paths inside the embedded files) of the bundled RSS feeds,
// sorted.
func Feeds() []string {
	entries, err := fs.ReadDir(files, FeedDir)
	if err != nil {
		// The folder is embedded at build time; its absence is a build bug.
		panic("demodata: " + err.Error())
	}
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		names = append(names, path.Join(FeedDir, e.Name()))
	}
	sort.Strings(names)
	return names
}

// Open returns the decompressed content of an embedded file (TaddyFile or one of Feeds).
func Open(name string) (io.ReadCloser, error) {
	f, err := files.Open(name)
	if err != nil {
		return nil, err
	}
	zr, err := gzip.NewReader(f)
	if err != nil {
		f.Close()
		return nil, err
	}
	return readCloser{zr, f}, nil
}

// BaseName is the file name of an embedded file without its folder and ".gz"
// ("demo/rss/no-agenda.xml.gz" -> "no-agenda.xml").
func BaseName(name string) string {
	return strings.TrimSuffix(path.Base(name), ".gz")
}

type readCloser struct {
	*gzip.Reader
	f fs.File
}

func (r readCloser) Close() error { return errors.Join(r.Reader.Close(), r.f.Close()) }
