package ingest

import (
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
)

// KaggleLayout describes the two-file Kaggle layout of the reference article: a podcasts
// file (one show a row) and an episodes file (one episode a row, naming its podcast).
type KaggleLayout struct {
	// PodcastsFile and EpisodesFile are the file names inside the folder (a .gz name is
	// gunzipped).
	PodcastsFile string
	EpisodesFile string
	// Podcasts maps show columns: id (required), title, description, language.
	Podcasts Mapping
	// Episodes maps episode columns: id and show_id (required), title, description, date,
	// language.
	Episodes Mapping
}

// DefaultKaggleLayout is the layout of the Kaggle "podcasts.csv + episodes.csv" dataset the
// article uses: episodes.podcast_uuid joins podcasts.uuid.
var DefaultKaggleLayout = KaggleLayout{
	PodcastsFile: "podcasts.csv",
	EpisodesFile: "episodes.csv",
	Podcasts: Mapping{
		FieldID:          {"uuid", "podcast_uuid", "id"},
		FieldTitle:       {"title", "name"},
		FieldDescription: {"description"},
		FieldLanguage:    {"language"},
	},
	Episodes: Mapping{
		FieldID:          {"uuid", "episode_uuid", "id"},
		FieldShowID:      {"podcast_uuid", "podcast_id"},
		FieldTitle:       {"title", "name"},
		FieldDescription: {"description"},
		FieldDate:        {"pub_date", "published", "date"},
		FieldLanguage:    {"language"},
	},
}

// ReadKaggle reads the Kaggle layout in dir and inner-joins episodes to podcasts on the
// podcast id, keeping the two sides apart (episode title and description; show title and
// description). An episode whose podcast is missing, and a podcast no episode refers to,
// are rejected with their reason; so are malformed rows and repeated podcast ids. A missing
// file is an error.
func ReadKaggle(dir string, layout KaggleLayout) (*Batch, error) {
	pods, err := Open(filepath.Join(dir, layout.PodcastsFile))
	if err != nil {
		return nil, err
	}
	defer pods.Close()
	eps, err := Open(filepath.Join(dir, layout.EpisodesFile))
	if err != nil {
		return nil, err
	}
	defer eps.Close()
	return joinKaggle(pods, eps, layout)
}

// joinKaggle is ReadKaggle on open files.
func joinKaggle(pods, eps io.Reader, layout KaggleLayout) (*Batch, error) {
	type show struct{ title, description, language string }
	shows := map[string]show{}
	used := map[string]bool{}
	b := &Batch{}
	var showOrder []string
	showOrigin := map[string]string{}
	err := parseCSV(pods, layout.PodcastsFile, layout.Podcasts, []string{FieldID}, func(origin string, rec Record, bad string) {
		switch {
		case bad != "":
			b.Rejects = append(b.Rejects, Reject{Kind: KindPodcast, Source: SourceKaggle,
				Origin: origin, Reason: ReasonMalformed, Detail: bad})
		case rec.ID == "":
			b.Rejects = append(b.Rejects, Reject{Kind: KindPodcast, Source: SourceKaggle,
				Origin: origin, Reason: ReasonMissingID, Detail: "podcast row without an id"})
		default:
			if _, dup := shows[rec.ID]; dup {
				b.Rejects = append(b.Rejects, Reject{Kind: KindPodcast, Source: SourceKaggle,
					Origin: origin, ID: rec.ID, Reason: ReasonDuplicateID,
					Detail: "podcast id already on " + showOrigin[rec.ID]})
				return
			}
			shows[rec.ID] = show{rec.Title, rec.Description, rec.Language}
			showOrder = append(showOrder, rec.ID)
			showOrigin[rec.ID] = origin
		}
	})
	if err != nil {
		return nil, err
	}
	err = parseCSV(eps, layout.EpisodesFile, layout.Episodes, []string{FieldID, FieldShowID}, func(origin string, rec Record, bad string) {
		b.Read++
		if bad != "" {
			b.Rejects = append(b.Rejects, Reject{Kind: KindEpisode, Source: SourceKaggle,
				Origin: origin, Reason: ReasonMalformed, Detail: bad})
			return
		}
		s, ok := shows[rec.ShowID]
		if !ok {
			b.Rejects = append(b.Rejects, Reject{Kind: KindEpisode, Source: SourceKaggle,
				Origin: origin, ID: rec.ID, Reason: ReasonPodcastMissing,
				Detail: fmt.Sprintf("podcast id %q is not in %s", rec.ShowID, layout.PodcastsFile)})
			return
		}
		used[rec.ShowID] = true
		rec.Source, rec.Origin = SourceKaggle, origin
		rec.ShowTitle, rec.ShowDescription = s.title, s.description
		if s.language != "" {
			rec.Language = s.language
		}
		b.Records = append(b.Records, rec)
	})
	if err != nil {
		return nil, err
	}
	for _, id := range showOrder {
		if !used[id] {
			b.Rejects = append(b.Rejects, Reject{Kind: KindPodcast, Source: SourceKaggle,
				Origin: showOrigin[id], ID: id, Reason: ReasonNoEpisodes,
				Detail: fmt.Sprintf("podcast %q has no episode in %s", shows[id].title, layout.EpisodesFile)})
		}
	}
	return b, nil
}

// parseCSV reads CSV with a header row from r, calling fn for every data row with the row's
// origin (name:line) and either its mapped fields or, for a malformed row, why. Header names
// match the mapping case-insensitively. Input without a header, or whose header lacks a
// column for a required field, is an error. A stray (unterminated) quote costs its own row
// only: the rows after it are read again (csvSplitter), and every line ends up in a record
// or in a malformed row passed to fn.
func parseCSV(r io.Reader, name string, m Mapping, required []string, fn func(origin string, rec Record, bad string)) error {
	cr := newCSVSplitter(r)
	header, _, bad, err := cr.next()
	if err == io.EOF {
		err = errNoHeader
	}
	if err == nil && bad != "" {
		err = errors.New(bad)
	}
	if err != nil {
		return fmt.Errorf("%s: reading the header: %w", name, err)
	}
	cr.want = len(header)
	col := map[string]int{}
	for i, h := range header {
		h = strings.ToLower(strings.TrimSpace(strings.TrimPrefix(h, "\ufeff")))
		if _, dup := col[h]; !dup {
			col[h] = i
		}
	}
	for _, f := range required {
		found := false
		for _, n := range m[f] {
			if _, ok := col[strings.ToLower(n)]; ok {
				found = true
			}
		}
		if !found {
			return fmt.Errorf("%s: no column for %s (looked for %s; header has %s)", name, f,
				strings.Join(m[f], ", "), strings.Join(header, ", "))
		}
	}
	for {
		row, line, bad, err := cr.next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		origin := fmt.Sprintf("%s:%d", name, line)
		if bad != "" {
			fn(origin, Record{}, bad)
			continue
		}
		if len(row) != len(header) {
			fn(origin, Record{}, fmt.Sprintf("row has %d fields, the header %d", len(row), len(header)))
			continue
		}
		fn(origin, m.record(func(n string) string {
			if i, ok := col[strings.ToLower(n)]; ok {
				return row[i]
			}
			return ""
		}), "")
	}
}
