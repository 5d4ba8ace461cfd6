package ingest

import (
	"bufio"
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/mmcdole/gofeed"

	"github.com/podsearch/podsearch/core/textclean"
)

// ReadRSS reads one podcast feed (RSS 2.0 with the iTunes extensions; Atom and JSON Feed are
// understood too) from r; name is the feed's file name, used in origins and as the last
// resort show id. A feed that cannot be parsed yields a KindFeed reject and no error.
//
// Per item: id = guid, else the enclosure URL, else the link, else a hash of show id, title
// and date; description = the longest (after cleaning) of description, content:encoded and
// itunes:summary; show description = the longer of the channel's description and
// itunes:summary; show id = the feed's own URL (atom:link rel=self), else its link, else
// "rss:" + name; language = the channel's <language>.
func ReadRSS(r io.Reader, name string) (*Batch, error) {
	b := &Batch{}
	feed, perr := parseFeed(r)
	if perr != nil {
		b.Rejects = append(b.Rejects, Reject{Kind: KindFeed, Source: SourceRSS, Origin: name,
			Reason: ReasonMalformed, Detail: perr.Error()})
		return b, nil
	}
	showID := firstNonBlank(feed.FeedLink, feed.Link, "rss:"+name)
	showDesc := feed.Description
	if feed.ITunesExt != nil {
		showDesc = longestClean(showDesc, feed.ITunesExt.Summary)
	}
	for i, it := range feed.Items {
		b.Read++
		origin := fmt.Sprintf("%s item %d", name, i+1)
		if it == nil {
			b.Rejects = append(b.Rejects, Reject{Kind: KindEpisode, Source: SourceRSS,
				Origin: origin, Reason: ReasonMalformed, Detail: "empty item"})
			continue
		}
		desc := longestClean(it.Description, it.Content)
		if it.ITunesExt != nil {
			desc = longestClean(desc, it.ITunesExt.Summary)
		}
		date := it.Published
		if it.PublishedParsed != nil {
			date = it.PublishedParsed.UTC().Format(time.RFC3339)
		}
		var enclosure string
		for _, e := range it.Enclosures {
			if e != nil && strings.TrimSpace(e.URL) != "" {
				enclosure = e.URL
				break
			}
		}
		id := firstNonBlank(it.GUID, enclosure, it.Link)
		if id == "" && (strings.TrimSpace(it.Title) != "" || strings.TrimSpace(desc) != "") {
			sum := sha1.Sum([]byte(showID + "\x00" + it.Title + "\x00" + it.Published))
			id = showID + "#" + hex.EncodeToString(sum[:8])
		}
		b.Records = append(b.Records, Record{
			Source: SourceRSS, Origin: origin, ID: id, ShowID: showID,
			ShowTitle: feed.Title, ShowDescription: showDesc,
			Title: it.Title, Description: desc, Date: date, Language: feed.Language,
		})
	}
	return b, nil
}

// parseFeed runs gofeed's parser, turning a panic on hostile input into an error.
func parseFeed(r io.Reader) (feed *gofeed.Feed, err error) {
	defer func() {
		if p := recover(); p != nil {
			feed, err = nil, fmt.Errorf("feed parser failed: %v", p)
		}
	}()
	// Real feeds carry white space (or a BOM) before the XML declaration; skip it.
	br := bufio.NewReader(r)
	for {
		c, _, rerr := br.ReadRune()
		if rerr != nil {
			return nil, fmt.Errorf("empty feed")
		}
		if c != '\ufeff' && !strings.ContainsRune(" \t\r\n", c) {
			_ = br.UnreadRune()
			break
		}
	}
	return gofeed.NewParser().Parse(br)
}

// ReadRSSPath reads a feed file, or every feed file (*.xml, *.rss, *.atom, and those names
// with .gz) in a folder, in name order. A file that cannot be opened is an error; one that
// cannot be parsed is a KindFeed reject.
func ReadRSSPath(path string) ([]*Batch, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	files := []string{path}
	if st.IsDir() {
		entries, err := os.ReadDir(path)
		if err != nil {
			return nil, err
		}
		files = files[:0]
		for _, e := range entries {
			n := strings.TrimSuffix(strings.ToLower(e.Name()), ".gz")
			if !e.IsDir() && (strings.HasSuffix(n, ".xml") || strings.HasSuffix(n, ".rss") || strings.HasSuffix(n, ".atom")) {
				files = append(files, filepath.Join(path, e.Name()))
			}
		}
		sort.Strings(files)
		if len(files) == 0 {
			return nil, fmt.Errorf("%s: no feed files (*.xml, *.rss, *.atom)", path)
		}
	}
	var out []*Batch
	for _, f := range files {
		rc, err := Open(f)
		if err != nil {
			return nil, err
		}
		b, err := ReadRSS(rc, filepath.Base(f))
		rc.Close()
		if err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	return out, nil
}

// longestClean returns whichever of a and b is longer after cleaning (a on ties).
func longestClean(a, b string) string {
	if len(textclean.Clean(b)) > len(textclean.Clean(a)) {
		return b
	}
	return a
}

func firstNonBlank(vals ...string) string {
	for _, v := range vals {
		if v = strings.TrimSpace(v); v != "" {
			return v
		}
	}
	return ""
}
