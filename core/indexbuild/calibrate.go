package indexbuild

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/podsearch/podsearch/core/evaluate"
	"github.com/podsearch/podsearch/core/index"
	"github.com/podsearch/podsearch/core/vec"
)

// CalibrationRecallK is the recall depth calibration breaks nDCG ties with: the 30 results
// a listener's first screens show (the depth the podcast queries are judged at).
const CalibrationRecallK = 30

// Calibrate chooses the hybrid fusion of the index in dir on the judged queries in
// queriesFile (JSON Lines, {"qid", "query", "relevant": {episode id: grade}}, as
// testdata/podcast_queries_dev.jsonl), encoded by the model the index serves (through the
// query side of adapterPath when given), through the index itself at its operating point
// (index.CalibrateFusion: z-score fusion, dense weights 0.1 to 0.9), and records the choice
// in the manifest. Queries whose judged episodes are all missing from the index are an
// error (a queries file for another corpus).
func Calibrate(ctx context.Context, dir, queriesFile, adapterPath string, progress io.Writer) (index.FusionSetting, error) {
	qs, err := evaluate.ReadQueries(queriesFile)
	if err != nil {
		return index.FusionSetting{}, err
	}
	ix, err := index.Open(dir, "", index.OpenOptions{})
	if err != nil {
		return index.FusionSetting{}, err
	}
	defer ix.Close()
	known, missing := 0, 0
	sr := ix.Searcher()
	for _, q := range qs {
		for id, g := range q.Relevant {
			if g < 1 {
				continue
			}
			if sr.Contains(id) {
				known++
			} else {
				missing++
			}
		}
	}
	if known == 0 {
		return index.FusionSetting{}, fmt.Errorf("%s: none of its %d judged episodes is in the index %s (queries for another corpus?)", queriesFile, missing, dir)
	}
	if missing > 0 {
		slog.Warn("calibration: judged episodes missing from the index count as not found", "missing", missing, "found", known)
	}
	texts := make([]string, len(qs))
	for i, q := range qs {
		texts[i] = q.Text
	}
	flat, d, err := EncodeQueries(ctx, texts, adapterPath, ix.Model().Fingerprint, progress)
	if err != nil {
		return index.FusionSetting{}, fmt.Errorf("calibration queries: %w", err)
	}
	judged := make([]index.JudgedQuery, len(qs))
	for i, q := range qs {
		judged[i] = index.JudgedQuery{Vector: vec.Row(flat, d, i), Text: q.Text, Relevant: q.Relevant}
	}
	t0 := time.Now()
	f, trials, err := index.CalibrateFusion(ctx, sr, judged, index.ZScore, CalibrationRecallK)
	if err != nil {
		return index.FusionSetting{}, err
	}
	for _, t := range trials {
		slog.Info("calibration trial", "fusion", t.Fusion, "dense_weight", t.DenseWeight, "ndcg_at_10", t.NDCG10,
			fmt.Sprintf("recall_at_%d", CalibrationRecallK), t.Recall)
	}
	f.Source = filepath.Base(queriesFile)
	if err := ix.SetFusion(f); err != nil {
		return index.FusionSetting{}, err
	}
	slog.Info("fusion calibrated", "fusion", f.Fusion, "dense_weight", f.DenseWeight, "queries", f.Queries,
		"ndcg_at_10", f.NDCG10, "recall", f.Recall, "recall_k", f.RecallK, "seconds", time.Since(t0).Seconds())
	return f, nil
}
