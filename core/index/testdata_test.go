package index

import (
	"bufio"
	"encoding/json"
	"hash/fnv"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/podsearch/podsearch/core/bm25"
	"github.com/podsearch/podsearch/core/vec"
	"github.com/podsearch/podsearch/internal/testenv"
)

// testDim is the width of the hashed bag-of-words vectors the tests use in place of the
// encoder (which needs the model set up): real text, deterministic, and similar texts get
// similar vectors.
const testDim = 64

// embedText hashes text's BM25 terms into a unit vector (two signed buckets per term).
func embedText(text string) []float32 {
	v := make([]float32, testDim)
	for _, t := range bm25.Analyze(text) {
		h := fnv.New64a()
		h.Write([]byte(t))
		x := h.Sum64()
		for k := 0; k < 2; k++ {
			b := int(x % testDim)
			x /= testDim
			if x&1 == 0 {
				v[b]++
			} else {
				v[b]--
			}
			x >>= 1
		}
	}
	if !vec.Normalize(v) {
		v[0] = 1
	}
	return v
}

var tagRE = regexp.MustCompile(`<[^>]*>`)

// loadEpisodes reads the real RSS episodes of the shared data (8 shows, English and German).
func loadEpisodes(t testing.TB) ([]Doc, []float32) {
	t.Helper()
	f, err := os.Open(testenv.Shared(t, "data/podcasts/rss_feeds/episodes.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var docs []Doc
	var vecs []float32
	seen := map[string]bool{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		var r struct {
			Title, Description, GUID, PubDate, ShowTitle, Language, FeedFile string
		}
		var raw map[string]string
		if err := json.Unmarshal(sc.Bytes(), &raw); err != nil {
			t.Fatal(err)
		}
		r.Title, r.Description, r.GUID = raw["episode_title"], raw["episode_description"], raw["guid"]
		r.PubDate, r.ShowTitle, r.Language, r.FeedFile = raw["pub_date"], raw["show_title"], raw["language"], raw["feed_file"]
		if r.GUID == "" || seen[r.GUID] {
			continue
		}
		seen[r.GUID] = true
		lang := strings.ToLower(r.Language)
		if i := strings.IndexByte(lang, '-'); i > 0 {
			lang = lang[:i]
		}
		d := Doc{ID: r.GUID, ShowID: r.FeedFile, ShowTitle: r.ShowTitle, Title: r.Title, Language: lang,
			Text: r.Title + ". " + tagRE.ReplaceAllString(r.Description, " ")}
		for _, layout := range []string{time.RFC1123Z, time.RFC1123, time.RFC3339} {
			if tm, err := time.Parse(layout, r.PubDate); err == nil {
				d.Date = tm.UTC()
				break
			}
		}
		docs = append(docs, d)
		vecs = append(vecs, embedText(d.Text)...)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return docs, vecs
}
