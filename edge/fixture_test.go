package edge

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/podsearch/podsearch/core/assets"
	"github.com/podsearch/podsearch/core/encoder"
	"github.com/podsearch/podsearch/core/ingest"
	"github.com/podsearch/podsearch/core/ingest/demo"
	"github.com/podsearch/podsearch/core/tokenizer"
	"github.com/podsearch/podsearch/internal/testenv"
)

// The edge tests search real episodes with real model outputs: the episodes behind the
// reference encoder's golden texts (Taddy and RSS episodes whose "title. description" the
// reference embedded), with the reference embeddings as episode vectors, and the golden
// short queries with their reference token ids and embeddings. goldenTokenizer and
// goldenEmbedder replay those reference outputs, so the tests need neither the model nor
// ONNX Runtime, only the shared data.
//
// Without the shared data (a fresh clone), the fixture is built from the bundled demo
// corpus instead (demoFixture): its first demoEpisodes episodes and the demoQueries, whose
// token ids and embeddings the real tokenizer and model (`make setup`) compute once; the
// tests then replay those outputs the same way.

type goldenLine struct {
	Text      string    `json:"text"`
	IDs       []int32   `json:"ids"`
	Embedding []float32 `json:"embedding"`
}

type fixture struct {
	episodes []Episode
	queries  []goldenLine // golden short queries whose text is already normalised
	ids      map[string][]int32
	vecs     map[string][]float32 // by idsKey
}

var (
	fixtureOnce sync.Once
	fixtureData *fixture
	fixtureErr  error
)

// loadFixture reads the golden outputs and the source episodes, or without the shared
// data builds the demo corpus fixture (once per test binary).
func loadFixture(t testing.TB) *fixture {
	t.Helper()
	golden, okGolden := testenv.SharedPath("golden/use-lite/use-lite-golden.jsonl")
	taddy, okTaddy := testenv.SharedPath("data/podcasts/taddy_sample/episodes.jsonl")
	rss, okRSS := testenv.SharedPath("data/podcasts/rss_feeds/episodes.jsonl")
	build := func() (*fixture, error) { return buildFixture(golden, taddy, rss) }
	if !okGolden || !okTaddy || !okRSS {
		if os.Getenv("PODSEARCH_REQUIRE_SHARED") == "1" {
			t.Fatalf("shared data %s is required (PODSEARCH_REQUIRE_SHARED=1) but absent", golden)
		}
		for _, p := range []string{assets.VocabPath(), assets.ModelPath(), assets.RuntimeLibraryPath()} {
			if _, err := os.Stat(p); err != nil {
				testenv.SkipOrFailModel(t, p)
			}
		}
		build = demoFixture
	}
	fixtureOnce.Do(func() { fixtureData, fixtureErr = build() })
	if fixtureErr != nil {
		t.Fatal(fixtureErr)
	}
	return fixtureData
}

// demoEpisodes is the number of demo corpus episodes in the demo fixture.
const demoEpisodes = 240

// demoQueries are the demo fixture's short queries (already normalised).
var demoQueries = []string{
	"history of jazz", "healthy eating during the holidays", "true crime murder investigation",
	"startup founders and venture capital", "climate change and the energy transition",
	"football transfer news", "meditation and mindfulness", "learning a new language",
	"artificial intelligence and machine learning", "world war two history",
	"personal finance and investing", "parenting teenagers", "comedy improv",
	"space exploration and nasa", "mental health and anxiety", "cooking italian food",
	"election politics and democracy", "running a marathon", "book reviews and novels",
	"film and movie reviews", "travel in europe", "nutrition and weight loss",
	"cryptocurrency and bitcoin", "music production and songwriting", "the bible and faith",
	"small business marketing", "video games", "relationships and dating",
}

// demoFixture builds the fixture from the bundled demo corpus, with the token ids and
// embeddings of the real tokenizer and model.
func demoFixture() (*fixture, error) {
	eps, err := demo.Corpus()
	if err != nil {
		return nil, err
	}
	uni, err := tokenizer.LoadFile(assets.VocabPath())
	if err != nil {
		return nil, err
	}
	sess, err := encoder.Open(encoder.Options{})
	if err != nil {
		return nil, err
	}
	defer sess.Close()
	fx := &fixture{ids: map[string][]int32{}, vecs: map[string][]float32{}}
	var texts []string
	for _, e := range eps {
		if len(fx.episodes) == demoEpisodes {
			break
		}
		if e.Title == "" || e.Description == "" {
			continue
		}
		d, _ := ingest.IndexDoc(e) // a bad date leaves the episode undated
		fx.episodes = append(fx.episodes, Episode{ID: e.ID, Title: e.Title, ShowID: e.ShowID, ShowTitle: e.ShowTitle,
			Language: e.Language, Date: d.Date, Text: e.Description})
		texts = append(texts, e.Text)
	}
	for _, q := range demoQueries {
		if Normalize(q) != q {
			return nil, fmt.Errorf("demo query %q is not normalised", q)
		}
		fx.queries = append(fx.queries, goldenLine{Text: q})
		texts = append(texts, q)
	}
	vecs, err := encoder.EmbedTexts(context.Background(), uni, sess, texts, 32, nil)
	if err != nil {
		return nil, err
	}
	for i, text := range texts {
		ids := encoder.Clip(uni.Encode(text))
		fx.ids[text] = ids
		fx.vecs[idsKey(ids)] = vecs[i]
		if i < len(fx.episodes) {
			fx.episodes[i].Vector = vecs[i]
		} else {
			q := &fx.queries[i-len(fx.episodes)]
			q.IDs, q.Embedding = ids, vecs[i]
		}
	}
	return fx, nil
}

func eachLine(path string, each func([]byte) error) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<26)
	for sc.Scan() {
		if err := each(sc.Bytes()); err != nil {
			return err
		}
	}
	return sc.Err()
}

func readJSONL[T any](path string, each func(T)) error {
	return eachLine(path, func(line []byte) error {
		var v T
		if err := json.Unmarshal(line, &v); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		each(v)
		return nil
	})
}

func buildFixture(goldenPath, taddyPath, rssPath string) (*fixture, error) {
	fx := &fixture{ids: map[string][]int32{}, vecs: map[string][]float32{}}
	var lines []goldenLine
	if err := readJSONL(goldenPath, func(g goldenLine) { lines = append(lines, g) }); err != nil {
		return nil, err
	}
	// Source episodes by "title. " prefix.
	type src struct {
		ep   Episode
		desc string
	}
	byTitle := map[string][]src{}
	add := func(title, desc string, ep Episode) {
		if title == "" {
			return
		}
		ep.Title, ep.Text = title, desc
		byTitle[title] = append(byTitle[title], src{ep, desc})
	}
	// The Taddy file is 10 MB: decode only the lines whose name is a golden title.
	titles := map[string]bool{}
	for _, g := range lines[32:] {
		if title, _, ok := strings.Cut(g.Text, ". "); ok {
			titles[title] = true
		}
	}
	err := eachLine(taddyPath, func(line []byte) error {
		i := bytes.Index(line, []byte(`"name": `))
		if i < 0 {
			return nil
		}
		var name string
		if json.NewDecoder(bytes.NewReader(line[i+8:])).Decode(&name) != nil || !titles[name] {
			return nil
		}
		var e struct {
			UUID          string `json:"uuid"`
			SeriesUUID    string `json:"series_uuid"`
			Name          string `json:"name"`
			Description   string `json:"description"`
			DatePublished string `json:"date_published"`
		}
		if err := json.Unmarshal(line, &e); err != nil {
			return fmt.Errorf("%s: %w", taddyPath, err)
		}
		d, _ := time.Parse("2006-01-02 15:04:05-07", e.DatePublished)
		add(e.Name, e.Description, Episode{ID: e.UUID, ShowID: e.SeriesUUID, Date: d})
		return nil
	})
	if err != nil {
		return nil, err
	}
	err = readJSONL(rssPath, func(e struct {
		EpisodeTitle       string `json:"episode_title"`
		EpisodeDescription string `json:"episode_description"`
		GUID               string `json:"guid"`
		PubDate            string `json:"pub_date"`
		ShowTitle          string `json:"show_title"`
		Language           string `json:"language"`
		FeedFile           string `json:"feed_file"`
	}) {
		d, err := time.Parse(time.RFC1123Z, e.PubDate)
		if err != nil {
			d, _ = time.Parse(time.RFC1123, e.PubDate)
		}
		lang, _, _ := strings.Cut(strings.ToLower(e.Language), "-")
		add(e.EpisodeTitle, e.EpisodeDescription, Episode{ID: e.GUID, ShowID: e.FeedFile, ShowTitle: e.ShowTitle, Language: lang, Date: d})
	})
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	for i, g := range lines {
		fx.ids[g.Text] = g.IDs
		fx.vecs[idsKey(g.IDs)] = g.Embedding
		if i < 32 {
			if Normalize(g.Text) == g.Text && len(g.IDs) > 0 {
				fx.queries = append(fx.queries, g)
			}
			continue
		}
		title, rest, ok := strings.Cut(g.Text, ". ")
		if !ok {
			continue
		}
		var match []Episode
		for _, s := range byTitle[title] {
			n := min(40, len(rest), len(s.desc))
			if rest[:n] == s.desc[:n] {
				match = append(match, s.ep)
			}
		}
		if len(match) != 1 || seen[match[0].ID] {
			continue
		}
		seen[match[0].ID] = true
		ep := match[0]
		ep.Vector = g.Embedding
		fx.episodes = append(fx.episodes, ep)
	}
	if len(fx.episodes) < 100 || len(fx.queries) < 20 {
		return nil, fmt.Errorf("fixture: matched only %d episodes and %d queries", len(fx.episodes), len(fx.queries))
	}
	return fx, nil
}

func idsKey(ids []int32) string { return fmt.Sprint(ids) }

// goldenTokenizer replays the reference tokenizer's ids for the golden texts.
type goldenTokenizer struct{ fx *fixture }

func (g goldenTokenizer) Encode(text string) []int32 { return g.fx.ids[text] }

func goldenTok(fx *fixture) Tokenizer { return NativeTokenizer(goldenTokenizer{fx}) }

// goldenFingerprint names the reference embeddings in these tests.
const goldenFingerprint = "use-lite-reference-golden"

// goldenEmbedder replays the reference embeddings; fail makes it fail like a dead encoder
// pool, and calls counts its calls.
type goldenEmbedder struct {
	fx    *fixture
	fail  atomic.Bool
	calls atomic.Int64
}

func (g *goldenEmbedder) Embed(ctx context.Context, ids [][]int32) ([][]float32, error) {
	g.calls.Add(1)
	if g.fail.Load() {
		return nil, errors.New("encoder pool: all members failed")
	}
	out := make([][]float32, len(ids))
	for i, x := range ids {
		v, ok := g.fx.vecs[idsKey(x)]
		if !ok {
			return nil, fmt.Errorf("no reference embedding for ids %v", x)
		}
		out[i] = v
	}
	return out, nil
}

func (g *goldenEmbedder) Fingerprint() string { return goldenFingerprint }

// countingSearcher wraps a Searcher and records when it is closed.
type countingSearcher struct {
	Searcher
	closed atomic.Bool
}

func (c *countingSearcher) Close() error {
	c.closed.Store(true)
	return c.Searcher.Close()
}
