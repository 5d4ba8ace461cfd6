package ingest

import (
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/podsearch/podsearch/core/textclean"
)

// Options controls Build.
type Options struct {
	// Seed makes the shuffle of the output deterministic: the same inputs and seed give
	// the same corpus file.
	Seed uint64
	// NoShuffle keeps the input order (sources in the order given, records as read).
	NoShuffle bool
	// Strict makes Build fail on the first malformed row, line or feed instead of
	// rejecting it and going on.
	Strict bool
	// KeepDuplicateTexts keeps episodes whose text exactly repeats an earlier one's (they
	// are dropped by default).
	KeepDuplicateTexts bool
	// Progress, when not nil, receives a progress bar (for example os.Stderr).
	Progress io.Writer
	// Detect guesses the language of a text without a source tag (LangUnknown when it
	// cannot); nil means DetectLanguage. It is called from several goroutines at once.
	Detect func(text string) string
}

// Stats counts every step of Build. Read = Written + Malformed + PodcastMissing + MissingID
// + Empty + DuplicateID + DuplicateText: every episode read is written or rejected.
type Stats struct {
	Read     int            `json:"read"`
	BySource map[string]int `json:"read_by_source"`
	// Episode-level drops, each with a Reject.
	Malformed      int `json:"malformed"`
	PodcastMissing int `json:"podcast_missing"`
	MissingID      int `json:"missing_id"`
	Empty          int `json:"empty"`
	DuplicateID    int `json:"duplicate_id"`
	DuplicateText  int `json:"duplicate_text"`
	Written        int `json:"written"`
	// Rejects that are not episodes: Kaggle podcasts without episodes (or malformed or
	// repeated podcast rows) and feeds that could not be parsed.
	PodcastsRejected int `json:"podcasts_rejected"`
	FeedsRejected    int `json:"feeds_rejected"`
	// Where the languages of the written episodes came from.
	LanguageFromSource int `json:"language_from_source"`
	LanguageDetected   int `json:"language_detected"`
	LanguageUnknown    int `json:"language_unknown"`
	// Written episodes whose date was absent or unparseable (Date left empty).
	NoDate int `json:"no_date"`
}

// Dropped is the number of episodes read but not written.
func (s Stats) Dropped() int {
	return s.Malformed + s.PodcastMissing + s.MissingID + s.Empty + s.DuplicateID + s.DuplicateText
}

// String is the one-line summary ingest prints.
func (s Stats) String() string {
	var src []string
	for _, k := range []string{SourceKaggle, SourceRSS, SourceJSONL} {
		if n, ok := s.BySource[k]; ok {
			src = append(src, fmt.Sprintf("%s %d", k, n))
		}
	}
	return fmt.Sprintf("read %d (%s), dropped %d malformed, %d podcast missing, %d without id, "+
		"%d empty, %d duplicate ids, %d duplicate texts, wrote %d "+
		"(language: %d tagged, %d detected, %d unknown; %d without date); "+
		"also rejected %d podcasts, %d feeds",
		s.Read, strings.Join(src, ", "), s.Malformed, s.PodcastMissing, s.MissingID,
		s.Empty, s.DuplicateID, s.DuplicateText, s.Written,
		s.LanguageFromSource, s.LanguageDetected, s.LanguageUnknown, s.NoDate,
		s.PodcastsRejected, s.FeedsRejected)
}

// Result is what Build produced.
type Result struct {
	Episodes []Episode
	// Rejects lists, in input order, every reader reject and every record Build dropped.
	Rejects []Reject
	Stats   Stats
}

// Build turns the readers' batches into the corpus: it cleans every field, composes the
// episode text, fills language and date, drops (with a Reject each) records without title
// and description, without id, with an id already taken, or with exactly the text of an
// earlier episode, and finally shuffles with Options.Seed.
func Build(batches []*Batch, opt Options) (*Result, error) {
	detect := opt.Detect
	if detect == nil {
		detect = DetectLanguage
	}
	res := &Result{Stats: Stats{BySource: map[string]int{}}}
	st := &res.Stats
	total := 0
	for _, b := range batches {
		total += len(b.Records)
		st.Read += b.Read
		for _, r := range b.Rejects {
			if opt.Strict && r.Reason == ReasonMalformed {
				return nil, fmt.Errorf("--strict: %s %s: %s", r.Kind, r.Origin, r.Detail)
			}
			res.Rejects = append(res.Rejects, r)
			switch {
			case r.Kind == KindPodcast:
				st.PodcastsRejected++
			case r.Kind == KindFeed:
				st.FeedsRejected++
			case r.Reason == ReasonMalformed:
				st.Malformed++
			case r.Reason == ReasonPodcastMissing:
				st.PodcastMissing++
			default:
				st.MissingID++
			}
			if r.Kind == KindEpisode {
				st.BySource[r.Source]++
			}
		}
	}
	bar := ProgressBar(opt.Progress, total, "cleaning episodes")
	langCache := map[string]string{}
	var undetected []int // episodes without a source language tag
	seenID := map[string]string{}
	seenText := map[string]string{}
	for _, b := range batches {
		for _, rec := range b.Records {
			_ = bar.Add(1)
			st.BySource[rec.Source]++
			texts := seenText
			if opt.KeepDuplicateTexts {
				texts = nil
			}
			ep, reason, detail := clean(rec, seenID, texts)
			if reason != "" {
				res.Rejects = append(res.Rejects, Reject{Kind: KindEpisode, Source: rec.Source,
					Origin: rec.Origin, ID: strings.TrimSpace(rec.ID), Reason: reason, Detail: detail})
				switch reason {
				case ReasonEmpty:
					st.Empty++
				case ReasonMissingID:
					st.MissingID++
				case ReasonDuplicateID:
					st.DuplicateID++
				case ReasonDuplicateText:
					st.DuplicateText++
				}
				continue
			}
			tag, ok := langCache[rec.Language]
			if !ok {
				tag = NormalizeLanguage(rec.Language)
				langCache[rec.Language] = tag
			}
			if tag != "" {
				ep.Language, ep.LanguageFrom = tag, "source"
				st.LanguageFromSource++
			} else {
				undetected = append(undetected, len(res.Episodes))
			}
			if ep.Date == "" {
				st.NoDate++
			}
			res.Episodes = append(res.Episodes, ep)
		}
	}
	_ = bar.Finish()
	detectAll(res.Episodes, undetected, detect, opt.Progress)
	for _, i := range undetected {
		if ep := &res.Episodes[i]; ep.Language == LangUnknown {
			st.LanguageUnknown++
		} else {
			ep.LanguageFrom = "detected"
			st.LanguageDetected++
		}
	}
	st.Written = len(res.Episodes)
	if !opt.NoShuffle {
		rng := rand.New(rand.NewPCG(opt.Seed, 0x9e3779b97f4a7c15))
		rng.Shuffle(len(res.Episodes), func(i, j int) {
			res.Episodes[i], res.Episodes[j] = res.Episodes[j], res.Episodes[i]
		})
	}
	return res, nil
}

// detectAll sets the Language of eps[i] for every i in idx with detect, on all CPUs (it is
// the costliest step of Build); an empty answer becomes LangUnknown.
func detectAll(eps []Episode, idx []int, detect func(string) string, progress io.Writer) {
	bar := ProgressBar(progress, len(idx), "detecting languages")
	workers := min(runtime.GOMAXPROCS(0), len(idx))
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				k := int(next.Add(1)) - 1
				if k >= len(idx) {
					return
				}
				ep := &eps[idx[k]]
				if ep.Language = detect(ep.Text); ep.Language == "" {
					ep.Language = LangUnknown
				}
				_ = bar.Add(1)
			}
		}()
	}
	wg.Wait()
	_ = bar.Finish()
}

// clean cleans one record into an Episode (language left to the caller), or returns why it
// is dropped. seenID and seenText remember the ids and texts already taken (value: the
// origin that took them); a nil seenText keeps duplicate texts.
func clean(rec Record, seenID, seenText map[string]string) (Episode, string, string) {
	ep := Episode{
		ID:              oneLine(rec.ID),
		ShowID:          oneLine(rec.ShowID),
		ShowTitle:       textclean.Clean(rec.ShowTitle),
		ShowDescription: textclean.Clean(rec.ShowDescription),
		Title:           textclean.Clean(rec.Title),
		Description:     textclean.Clean(rec.Description),
		Source:          rec.Source,
	}
	if ep.Title == "" && ep.Description == "" {
		return ep, ReasonEmpty, "no title and no description after cleaning"
	}
	if ep.ID == "" {
		return ep, ReasonMissingID, "no value in the id field"
	}
	if first, dup := seenID[ep.ID]; dup {
		return ep, ReasonDuplicateID, "id already taken by " + first
	}
	ep.Text = ComposeText(ep.Title, ep.Description, ep.ShowTitle, ep.ShowDescription)
	if first, dup := seenText[ep.Text]; dup {
		return ep, ReasonDuplicateText, "same text as " + first
	}
	seenID[ep.ID] = rec.Origin
	if seenText != nil {
		seenText[ep.Text] = rec.Origin
	}
	ep.Date, _ = NormalizeDate(rec.Date)
	return ep, "", ""
}

// ComposeText joins the non-empty parts (episode title, episode description, show title,
// show description) into the episode text as the reference article does, with ". "
// between parts, or just a space after a part that already ends a sentence.
func ComposeText(parts ...string) string {
	var b strings.Builder
	for _, p := range parts {
		if p == "" {
			continue
		}
		if b.Len() > 0 {
			last, _ := utf8.DecodeLastRuneInString(b.String())
			if !strings.ContainsRune(".!?…。！？:;", last) {
				b.WriteByte('.')
			}
			b.WriteByte(' ')
		}
		b.WriteString(p)
	}
	return b.String()
}

// oneLine trims an id and collapses any white space inside it.
func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// ProgressBar returns a progress bar over total steps on w, or a silent one when w is nil.
// On a terminal it redraws ten times a second; into a file or pipe (a job's log) every ten
// seconds, so logs keep a trace of progress without filling up.
func ProgressBar(w io.Writer, total int, what string) *progressbar.ProgressBar {
	if w == nil {
		return progressbar.DefaultSilent(int64(total), what)
	}
	throttle := 100 * time.Millisecond
	if f, ok := w.(*os.File); ok && !term.IsTerminal(int(f.Fd())) {
		throttle = 10 * time.Second
	}
	return progressbar.NewOptions(total,
		progressbar.OptionSetWriter(w),
		progressbar.OptionSetDescription(what),
		progressbar.OptionShowCount(),
		progressbar.OptionThrottle(throttle),
		progressbar.OptionClearOnFinish(),
	)
}
