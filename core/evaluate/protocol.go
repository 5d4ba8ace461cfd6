package evaluate

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/podsearch/podsearch/core/adapter"
	"github.com/podsearch/podsearch/core/index"
	"github.com/podsearch/podsearch/core/metrics"
	"github.com/podsearch/podsearch/core/pairs"
)

// The metrics of each section of Run, as the evaluation issue and the reference article name
// them.
var (
	InBatchMetrics = metrics.MustParseAll("mrr@5", "recall@1")
	TestMetrics    = metrics.MustParseAll("recall@1", "recall@10", "recall@30", "mrr@1", "mrr@10", "mrr@30")
	QueryMetrics   = metrics.MustParseAll("recall@10", "recall@30", "mrr@30", "ndcg@10")
	BEIRMetrics    = metrics.MustParseAll("ndcg@10", "recall@100", "mrr@10")
)

// Encoder embeds texts with one model. The eval and train commands give the real encoder
// behind the vector cache (core/evaluate/vcache).
type Encoder interface {
	// Encode returns one vector per text; what names the texts in logs and progress bars.
	Encode(ctx context.Context, what string, texts []string) ([][]float32, error)
	// Fingerprint identifies the model (adapters and indexes record it).
	Fingerprint() string
}

// Inputs name what Run evaluates; each section runs when its input is set, in the order
// pairs (in-batch and test), queries, BEIR.
type Inputs struct {
	// PairsDir is a folder written by `podsearch pairs`: in-batch MRR@5/Recall@1 on its
	// eval.jsonl (first pair per episode) and exact retrieval over its test.jsonl episodes.
	PairsDir string
	// Corpus is a corpus JSONL (ingest output or BEIR corpus.jsonl): searched by Queries;
	// with PairsDir it gives languages and the test episodes' full texts.
	Corpus string
	// Queries is a judged queries file searched against Corpus.
	Queries string
	// BEIR is a BEIR folder evaluated end to end with its qrels split Split.
	BEIR, Split string
}

// Adapt trains an adapter (or a query tower) on pairs, with no evaluation pairs.
type Adapt func(ctx context.Context, trainPairs []Pair) (Adapted, error)

// Adapted is what an Adapt trained.
type Adapted struct {
	// Adapter is the tuned model; Info what the training did (as core/train.FitAdapter
	// reports it).
	Adapter *adapter.Adapter
	Info    map[string]any
	// Tower is the encoder of an Adapter of kind Tower (see Options.Tower); nil otherwise.
	Tower Encoder
}

// Options configure Run.
type Options struct {
	// Adapter, when set, adds the tuned rows; AdapterPath names it in the report. An
	// adapter of kind Tower needs Tower, the encoder of its query tower.
	Adapter     *adapter.Adapter
	AdapterPath string
	Tower       Encoder
	// Adapt, when set (and Adapter is not), first trains an adapter (or tower) on AdaptPerDoc
	// pseudo-queries per document (seeded by AdaptSeed) of the Queries or BEIR section's
	// corpus, then evaluates base against it.
	Adapt       Adapt
	AdaptPerDoc int
	AdaptSeed   uint64
	// Keyword adds BM25 and hybrid rows; HybridWeight is the dense weight of the exact-search
	// hybrid (min-max normalised convex combination).
	Keyword      bool
	HybridWeight float64
	// MaxDocs keeps at most this many documents per section (judged ones first); MaxQueries
	// the first this many queries; 0: all.
	MaxDocs, MaxQueries int
	// CurveK is the largest k of the Recall@k curves (0: no curves).
	CurveK int
	// Fusions and FusionWeights, when set, add a row per normalisation and dense weight
	// fusing each side's top FusionDepth candidates (SideLists.Fuse; 0: max(100, 4 x the
	// largest metric cutoff)).
	Fusions       []Norm
	FusionWeights []float64
	FusionDepth   int
	// Index, when set, adds rows searched through that built index (test and queries
	// sections); IndexName names it in the notes.
	Index        *index.Index
	IndexName    string
	IndexOptions IndexOptions
	// Passages, when set, adds rows that score each document by its best passage
	// (Passages, PassageLists): "dense passages", and with Keyword a row per Fusions and
	// FusionWeights.
	Passages *PassageOptions
}

// Run evaluates the inputs with enc (base rows) and, given an adapter or Adapt, the tuned
// model, and returns the report: the eval command's protocol. Writing the report is the
// caller's job.
func Run(ctx context.Context, enc Encoder, in Inputs, o Options) (*Report, error) {
	r := &run{enc: enc, o: o, report: &Report{BaseFingerprint: enc.Fingerprint()}, ad: o.Adapter}
	report := r.report
	if o.Index != nil {
		r.ixNotes = map[string]bool{}
		report.Notes = append(report.Notes, fmt.Sprintf("index %s: %d episodes, %d shards, %s", o.IndexName, o.Index.Len(), o.Index.Shards(), o.Index.Model()))
	}
	if r.ad != nil {
		report.Adapter = o.AdapterPath
		switch {
		case r.ad.Kind == adapter.Tower && r.ad.BothSides:
			report.Notes = append(report.Notes, "tuned rows: the fine-tuned encoder (both towers trained) embeds the queries and the episodes")
		case r.ad.Kind == adapter.Tower:
			report.Notes = append(report.Notes, "tuned rows: the fine-tuned query tower embeds the queries; episode vectors are the base encoder's")
		}
		if t, ok := r.ad.Notes["pairs"]; ok {
			report.Notes = append(report.Notes, fmt.Sprintf("adapter trained on %v pairs", t))
		}
	}
	var names []string

	// The corpus, when given, supplies languages (per-language rows) and the episode texts
	// of the test split (what an index of the corpus holds).
	var corpusDocs []Doc
	byID := map[string]Doc{}
	if in.Corpus != "" {
		var err error
		if corpusDocs, err = ReadCorpus(in.Corpus); err != nil {
			return nil, err
		}
		for _, d := range corpusDocs {
			byID[d.ID] = d
		}
	}
	lang := func(id string) string { return byID[id].Language }
	if in.PairsDir != "" {
		names = append(names, "pairs "+filepath.Base(in.PairsDir))
		evalPairs, err := ReadPairs(filepath.Join(in.PairsDir, "eval.jsonl"), lang)
		if err != nil {
			return nil, err
		}
		evalPairs = FirstPerEpisode(evalPairs)
		docs, _ := Episodes(evalPairs)
		set := Set{Section: "in-batch", Docs: docs, Queries: PairQueries(evalPairs), Metrics: InBatchMetrics}
		// In-batch ranking: no curves, no index, no limits, no keyword or fusion rows.
		inBatch := &run{enc: enc, report: report, ad: r.ad, o: Options{Tower: o.Tower}}
		if err := inBatch.section(ctx, set); err != nil {
			return nil, err
		}
		testPairs, err := ReadPairs(filepath.Join(in.PairsDir, "test.jsonl"), lang)
		if err != nil {
			return nil, err
		}
		tdocs, _ := Episodes(testPairs)
		for i, d := range tdocs {
			if c, ok := byID[d.ID]; ok {
				tdocs[i] = c
			}
		}
		set = Set{Section: "test", Docs: tdocs, Queries: PairQueries(testPairs), Metrics: TestMetrics}
		if err := r.section(ctx, set); err != nil {
			return nil, err
		}
	}
	if in.Queries != "" {
		names = append(names, "queries "+filepath.Base(in.Queries))
		docs := corpusDocs
		qs, err := ReadQueries(in.Queries)
		if err != nil {
			return nil, err
		}
		if err := CheckJudged(qs, docs); err != nil {
			return nil, err
		}
		if err := r.adapt(ctx, Subsample(docs, qs, o.MaxDocs)); err != nil {
			return nil, err
		}
		set := Set{Section: "queries", Docs: docs, Queries: qs, Metrics: QueryMetrics, MinSubset: 3}
		if err := r.section(ctx, set); err != nil {
			return nil, err
		}
	}
	if in.BEIR != "" {
		names = append(names, "BEIR "+filepath.Base(in.BEIR))
		b, err := ReadBEIRFolder(in.BEIR, in.Split)
		if err != nil {
			return nil, err
		}
		docs, qs := b.Docs, b.Queries
		if n := len(b.EmptyDocs); n > 0 {
			ids := b.EmptyDocs[:min(n, 10)]
			slog.Warn("BEIR documents without text left out", "dir", in.BEIR, "documents", n, "ids", ids)
			report.Notes = append(report.Notes, fmt.Sprintf("beir %s: %d documents without text left out (ids %s); a judgement of one counts as a miss",
				filepath.Base(in.BEIR), n, strings.Join(ids, ", ")))
		}
		set := Set{Section: "beir " + filepath.Base(in.BEIR), Docs: docs, Queries: qs, Metrics: BEIRMetrics}
		r.o.Index = nil // an index is of the Corpus episodes, not of the BEIR folder
		if err := r.adapt(ctx, Subsample(docs, qs, o.MaxDocs)); err != nil {
			return nil, err
		}
		if in.Split != "train" {
			// The folder's train split, when it has one, chooses the default fusion's
			// weight for this corpus, as `podsearch index --calibrate` would.
			if _, err := os.Stat(filepath.Join(in.BEIR, "qrels", "train.tsv")); err == nil {
				tb, err := ReadBEIRFolder(in.BEIR, "train")
				if err != nil {
					// The split asked for still evaluates; the default fusion keeps its weight.
					slog.Warn("BEIR train split unreadable: the default fusion keeps its default weight", "dir", in.BEIR, "err", err)
					report.Notes = append(report.Notes, fmt.Sprintf("beir %s: train split unreadable (%v): default fusion at its default weight", filepath.Base(in.BEIR), err))
				} else {
					r.calib = &Calibration{Name: "train", Queries: tb.Queries}
				}
			}
		}
		err = r.section(ctx, set)
		r.calib = nil
		if err != nil {
			return nil, err
		}
	}
	if r.ad != nil {
		report.TunedFingerprint = r.ad.Fingerprint()
		if report.Training == nil {
			report.Training = r.ad.Notes
		}
	}
	report.Name = "eval: " + strings.Join(names, ", ")
	return report, nil
}

// ReadPairs reads a pairs file written by `podsearch pairs` (an empty file is an error);
// lang (may be nil) gives each episode's language.
func ReadPairs(path string, lang func(episodeID string) string) ([]Pair, error) {
	ps, err := pairs.ReadPairs(path)
	if err != nil {
		return nil, err
	}
	if len(ps) == 0 {
		return nil, fmt.Errorf("%s: no pairs", path)
	}
	return FromPairs(ps, lang), nil
}

// run is one Run: its encoder, options, report and the adapter being evaluated.
type run struct {
	enc     Encoder
	o       Options
	report  *Report
	ad      *adapter.Adapter
	ixNotes map[string]bool // index notes already in the report
	// calib, when set, chooses the default fusion's dense weight (defaultFusionRows).
	calib *Calibration
}

// adapt, when Options.Adapt is set, trains an adapter on pseudo-queries made from docs and
// records the training in the report.
func (r *run) adapt(ctx context.Context, docs []Doc) error {
	if r.o.Adapt == nil {
		return nil
	}
	pseudo := PseudoPairs(docs, r.o.AdaptPerDoc, r.o.AdaptSeed)
	UseDocTexts(pseudo, docs) // train against the vectors the index serves
	slog.Info("adapt: pseudo-queries from the corpus", "documents", len(docs), "pairs", len(pseudo))
	res, err := r.o.Adapt(ctx, pseudo)
	if err != nil {
		return err
	}
	if res.Adapter.Kind == adapter.Tower && res.Tower == nil {
		return fmt.Errorf("eval: --adapt trained a tower but gave no encoder for it")
	}
	r.ad, r.o.Tower = res.Adapter, res.Tower
	r.report.Training = res.Info
	r.report.Adapter = "--adapt (pseudo-queries from the corpus: title, inverse cloze)"
	return nil
}

// section encodes a set's documents and queries and adds its dense, index, BM25, hybrid and
// fusion rows, base and tuned, to the report.
func (r *run) section(ctx context.Context, s Set) error {
	o, report, ad := r.o, r.report, r.ad
	s.Docs = Subsample(s.Docs, s.Queries, o.MaxDocs)
	if o.MaxQueries > 0 && len(s.Queries) > o.MaxQueries {
		s.Queries = s.Queries[:o.MaxQueries]
	}
	if o.MaxDocs > 0 {
		report.Notes = append(report.Notes, fmt.Sprintf("%s: subsampled to %d documents (optimistic)", s.Section, len(s.Docs)))
	}
	dtexts := make([]string, len(s.Docs))
	for i, d := range s.Docs {
		dtexts[i] = d.Text
	}
	qtexts := make([]string, len(s.Queries))
	for i, q := range s.Queries {
		qtexts[i] = q.Text
	}
	dv, err := r.enc.Encode(ctx, s.Section+" documents", dtexts)
	if err != nil {
		return err
	}
	qv, err := r.enc.Encode(ctx, s.Section+" queries", qtexts)
	if err != nil {
		return err
	}
	var tq, td [][]float32 // the tuned model's query and document vectors
	if ad != nil && ad.Kind == adapter.Tower {
		if o.Tower == nil {
			return fmt.Errorf("eval: a query tower needs its encoder")
		}
		if tq, err = o.Tower.Encode(ctx, s.Section+" queries (tuned tower)", qtexts); err != nil {
			return err
		}
		td = dv
		if ad.BothSides {
			if td, err = o.Tower.Encode(ctx, s.Section+" documents (tuned tower)", dtexts); err != nil {
				return err
			}
		}
		if err := r.denseRows(s, qv, dv, Base); err != nil {
			return err
		}
		if err := r.denseRows(s, tq, td, Tuned); err != nil {
			return err
		}
	} else {
		rows, curves, err := Dense(s, qv, dv, ad, o.CurveK)
		if err != nil {
			return err
		}
		report.Rows = append(report.Rows, rows...)
		report.Curves = append(report.Curves, curves...)
		if ad != nil {
			if tq, err = ad.ApplyAll(qv, false); err != nil {
				return err
			}
			if td, err = ad.ApplyAll(dv, true); err != nil {
				return err
			}
		}
	}
	if err := r.indexRows(s, qv, tq); err != nil {
		return err
	}
	if !o.Keyword {
		return r.passageRows(ctx, s, qv, tq, nil)
	}
	k := max(metrics.MaxK(s.Metrics), o.CurveK)
	kw := BM25(s.Docs, s.Queries)
	ranked := RankSparse(kw, len(s.Docs), k)
	rows, err := s.Score("bm25", "-", ranked)
	if err != nil {
		return err
	}
	report.Rows = append(report.Rows, rows...)
	if o.CurveK > 0 {
		report.Curves = append(report.Curves, Curve{Label: s.Section + " bm25", Recall: s.RecallCurve(ranked, o.CurveK)})
	}
	type variant struct {
		model  string
		qv, dv [][]float32
	}
	variants := []variant{{Base, qv, dv}}
	if ad != nil {
		variants = append(variants, variant{Tuned, tq, td})
	}
	cv, err := r.encodeCalibration(ctx, s)
	if err != nil {
		return err
	}
	for _, v := range variants {
		ranked, err := Hybrid(v.qv, v.dv, kw, o.HybridWeight, k)
		if err != nil {
			return err
		}
		rows, err := s.Score(fmt.Sprintf("hybrid w%.1f", o.HybridWeight), v.model, ranked)
		if err != nil {
			return err
		}
		report.Rows = append(report.Rows, rows...)
		if err := r.defaultFusionRows(s, v.model, v.qv, v.dv, kw, cv); err != nil {
			return err
		}
		if err := r.fusionRows(s, v.model, v.qv, v.dv, kw); err != nil {
			return err
		}
	}
	return r.passageRows(ctx, s, qv, tq, kw)
}

// fusionDepth is the candidates a fusion takes from each side for a largest cutoff k:
// FusionDepth, or by default max(100, 4k) as the index does.
func (o Options) fusionDepth(k int) int {
	if o.FusionDepth > 0 {
		return o.FusionDepth
	}
	return max(100, 4*k)
}

// passageRows adds the rows of Options.Passages (when set): each document scored by its best
// passage, dense alone and fused with the keyword scores kw (when not nil) by every
// Options.Fusions and FusionWeights, for the base queries qv and the tuned ones tq (nil
// without an adapter).
func (r *run) passageRows(ctx context.Context, s Set, qv, tq [][]float32, kw []Sparse) error {
	o, ad := r.o, r.ad
	if o.Passages == nil {
		return nil
	}
	texts, owner := Passages(s.Docs, *o.Passages)
	r.report.Notes = append(r.report.Notes, fmt.Sprintf("%s: %d passages for %d documents (window %d words, from %d words on)",
		s.Section, len(texts), len(s.Docs), o.Passages.Window, o.Passages.LongWords))
	pv, err := r.enc.Encode(ctx, s.Section+" passages", texts)
	if err != nil {
		return err
	}
	type variant struct {
		model  string
		qv, pv [][]float32
	}
	vs := []variant{{Base, qv, pv}}
	if ad != nil {
		tp := pv
		switch {
		case ad.Kind == adapter.Tower && ad.BothSides:
			if tp, err = o.Tower.Encode(ctx, s.Section+" passages (tuned tower)", texts); err != nil {
				return err
			}
		case ad.Kind != adapter.Tower:
			if tp, err = ad.ApplyAll(pv, true); err != nil {
				return err
			}
		}
		vs = append(vs, variant{Tuned, tq, tp})
	}
	k := metrics.MaxK(s.Metrics)
	depth := o.fusionDepth(k)
	for _, v := range vs {
		dense, err := PassageLists(v.qv, v.pv, owner, len(s.Docs), depth)
		if err != nil {
			return err
		}
		top := Ranked(dense)
		for i := range top {
			top[i] = top[i][:min(k, len(top[i]))]
		}
		rows, err := s.Score("dense passages", v.model, top)
		if err != nil {
			return err
		}
		r.report.Rows = append(r.report.Rows, rows...)
		if kw == nil {
			continue
		}
		lists := SideLists{Dense: dense, Keyword: keywordLists(kw, depth)}
		for _, n := range o.Fusions {
			for _, w := range o.FusionWeights {
				if err := r.fusedRows(s, lists, FuseOptions{Norm: n, DenseWeight: w}, k, fmt.Sprintf("fuse %s w%.2f passages", n, w), v.model); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// fusionRows adds a row per normalisation and dense weight of Options.Fusions and
// FusionWeights: each side's top candidates fused as a search node fuses them
// (SideLists.Fuse).
func (r *run) fusionRows(s Set, model string, qv, dv [][]float32, kw []Sparse) error {
	o := r.o
	if len(o.Fusions) == 0 {
		return nil
	}
	k := metrics.MaxK(s.Metrics)
	lists, err := CandidateLists(qv, dv, kw, o.fusionDepth(k))
	if err != nil {
		return err
	}
	for _, n := range o.Fusions {
		for _, w := range o.FusionWeights {
			if err := r.fusedRows(s, lists, FuseOptions{Norm: n, DenseWeight: w}, k, fmt.Sprintf("fuse %s w%.2f", n, w), model); err != nil {
				return err
			}
		}
	}
	return nil
}

// fusedRows adds the rows, named retrieval, of lists fused as o says, k hits a query.
func (r *run) fusedRows(s Set, lists SideLists, o FuseOptions, k int, retrieval, model string) error {
	ranked, err := lists.Fuse(o, k)
	if err != nil {
		return err
	}
	rows, err := s.Score(retrieval, model, ranked)
	if err != nil {
		return err
	}
	r.report.Rows = append(r.report.Rows, rows...)
	return nil
}

// denseRows adds the exact dense rows (and Recall curve) of one model's query and document
// vectors, labelled model.
func (r *run) denseRows(s Set, qv, dv [][]float32, model string) error {
	rows, curves, err := Dense(s, qv, dv, nil, r.o.CurveK)
	if err != nil {
		return err
	}
	for i := range rows {
		rows[i].Model = model
	}
	for i := range curves {
		curves[i].Label = strings.TrimSuffix(curves[i].Label, Base) + model
	}
	r.report.Rows = append(r.report.Rows, rows...)
	r.report.Curves = append(r.report.Curves, curves...)
	return nil
}

// indexRows adds the rows of Options.Index (when set) to the report: the models it can serve
// are those whose episode vectors it holds (its recorded fingerprint is the base encoder's,
// which also serves a query-only adapter, or the tuned model's).
func (r *run) indexRows(s Set, qv, tq [][]float32) error {
	o, ad := r.o, r.ad
	if o.Index == nil {
		return nil
	}
	note := func(n string) {
		if !r.ixNotes[n] {
			r.ixNotes[n] = true
			r.report.Notes = append(r.report.Notes, n)
		}
	}
	fp, baseFP := o.Index.Model().Fingerprint, r.enc.Fingerprint()
	var models []ModelQueries
	switch {
	case fp == baseFP || fp == "":
		if fp == "" {
			note("the index records no model fingerprint: searched as if built with the base encoder")
		}
		models = append(models, ModelQueries{Model: Base, Vectors: qv})
		if ad != nil && ad.BothSides {
			note("no tuned index rows: the adapter maps episode vectors too, so the index must be built through it")
		} else if ad != nil {
			models = append(models, ModelQueries{Model: Tuned, Vectors: tq})
		}
	case ad != nil && fp == ad.Fingerprint():
		note("the index was built for the tuned model: no base index rows")
		models = append(models, ModelQueries{Model: Tuned, Vectors: tq})
	default:
		return fmt.Errorf("%w: the index was built with model %q, the encoder is %q (rebuild the index, or pass its adapter)", index.ErrWrongModel, fp, baseFP)
	}
	if n := o.Index.Len(); n != len(s.Docs) {
		note(fmt.Sprintf("%s: index rows search the whole index (%d episodes), the other rows the section's %d documents", s.Section, n, len(s.Docs)))
	}
	rows, err := IndexRows(s, o.Index.Searcher(), models, o.IndexOptions)
	if err != nil {
		return err
	}
	r.report.Rows = append(r.report.Rows, rows...)
	return nil
}
