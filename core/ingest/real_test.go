package ingest

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/podsearch/podsearch/internal/testenv"
)

// itemTag counts <item> elements in raw feed text, independently of the feed parser.
var itemTag = regexp.MustCompile(`<item[\s>]`)

func TestRSSRealFeeds(t *testing.T) {
	dir := testenv.Shared(t, "data/podcasts/rss_feeds/xml")
	batches, err := ReadRSSPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(batches) != 8 {
		t.Fatalf("got %d feeds, want 8", len(batches))
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*.xml"))
	for i, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if want := len(itemTag.FindAll(raw, -1)); batches[i].Read != want || len(batches[i].Records) != want {
			t.Errorf("%s: read %d, records %d, raw <item> count %d; rejects %v",
				filepath.Base(f), batches[i].Read, len(batches[i].Records), want, batches[i].Rejects)
		}
	}
	// By default the exact-duplicate drop applies: the German DW feed republishes some
	// items under a new guid with the same title and description. Each drop has a reject
	// naming the item it repeats.
	res, err := Build(batches, Options{Seed: 7})
	if err != nil {
		t.Fatal(err)
	}
	st := res.Stats
	if st.Read != 380 || st.Written+st.DuplicateText != 380 || len(res.Rejects) != st.DuplicateText {
		t.Fatalf("want 380 read, each written or a duplicate text: %s; rejects %v", st, res.Rejects)
	}
	for _, r := range res.Rejects {
		if r.Reason != ReasonDuplicateText || !strings.HasPrefix(r.Detail, "same text as ") {
			t.Fatalf("unexpected reject %+v", r)
		}
	}
	// shared/data/README.md: the 8 feeds hold 380 items; every one must come through.
	res, err = Build(batches, Options{Seed: 7, KeepDuplicateTexts: true})
	if err != nil {
		t.Fatal(err)
	}
	if res.Stats.Read != 380 || res.Stats.Written != 380 || len(res.Rejects) != 0 {
		t.Fatalf("want 380 read and written, no rejects: %s; rejects %v", res.Stats, res.Rejects)
	}
	shows := map[string]bool{}
	for _, e := range res.Episodes {
		if e.ID == "" || e.ShowID == "" || e.ShowTitle == "" || e.Title == "" || e.Text == "" || e.Language == "" {
			t.Fatalf("episode without id/show/title/text/language: %+v", e)
		}
		if !strings.Contains(e.Text, e.ShowTitle) {
			t.Fatalf("text lacks the show title: %+v", e)
		}
		if strings.Contains(e.Text, "<p>") || strings.Contains(e.Text, "&gt;") || strings.Contains(e.Text, "https://") {
			t.Fatalf("text not cleaned: %.300q", e.Text)
		}
		shows[e.ShowTitle] = true
	}
	if len(shows) != 8 {
		t.Fatalf("want 8 shows, got %v", shows)
	}
}

func TestTaddyJSONL(t *testing.T) {
	path := testenv.Shared(t, "data/podcasts/taddy_sample/episodes.jsonl")
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b, err := ReadJSONL(f, "episodes.jsonl", DefaultJSONLMapping)
	if err != nil {
		t.Fatal(err)
	}
	// Language detection (tested on the fixture and the feeds) is most of Build's time; a
	// fixed answer keeps this accounting test fast under the race detector.
	res, err := Build([]*Batch{b}, Options{Seed: 1, Detect: func(string) string { return "en" }})
	if err != nil {
		t.Fatal(err)
	}
	st := res.Stats
	// The Taddy README states 10,544 episodes.
	if st.Read != 10544 {
		t.Fatalf("read %d, want 10544", st.Read)
	}
	if st.Read != st.Written+st.Dropped() {
		t.Fatalf("unaccounted episodes: %s", st)
	}
	byReason := map[string]int{}
	for _, r := range res.Rejects {
		if r.Kind != KindEpisode || r.Reason == "" || r.Origin == "" {
			t.Fatalf("bad reject %+v", r)
		}
		byReason[r.Reason]++
	}
	if len(res.Rejects) != st.Dropped() || byReason[ReasonEmpty] != st.Empty || byReason[ReasonDuplicateText] != st.DuplicateText {
		t.Fatalf("rejects %v do not match stats %s", byReason, st)
	}
	// Independently: lines whose name and description and subtitle are all null or blank
	// can only be dropped as empty.
	blank := 0
	f2, _ := os.Open(path)
	defer f2.Close()
	sc := bufio.NewScanner(f2)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		var row struct{ Name, Description, Subtitle *string }
		if err := json.Unmarshal(sc.Bytes(), &row); err != nil {
			t.Fatal(err)
		}
		s := func(v *string) string {
			if v == nil {
				return ""
			}
			return strings.TrimSpace(*v)
		}
		if s(row.Name) == "" && s(row.Description) == "" && s(row.Subtitle) == "" {
			blank++
		}
	}
	if blank == 0 || st.Empty < blank {
		t.Fatalf("%d raw lines are blank but only %d dropped as empty", blank, st.Empty)
	}
	ids := map[string]bool{}
	texts := map[string]bool{}
	for _, e := range res.Episodes {
		if ids[e.ID] || texts[e.Text] {
			t.Fatalf("repeated id or text: %s", e.ID)
		}
		ids[e.ID], texts[e.Text] = true, true
		if e.ShowID == "" || e.Language == "" || (e.Title == "" && e.Description == "") {
			t.Fatalf("incomplete episode %+v", e)
		}
	}
	t.Logf("taddy: %s", st)
}
