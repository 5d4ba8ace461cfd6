package evaluate

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Report is the outcome of an eval run: rows for every section, retrieval method, model and
// subset, plus provenance.
type Report struct {
	Name             string         `json:"name"`
	BaseFingerprint  string         `json:"base_fingerprint,omitempty"`
	TunedFingerprint string         `json:"tuned_fingerprint,omitempty"`
	Adapter          string         `json:"adapter,omitempty"`
	Training         map[string]any `json:"training,omitempty"`
	Notes            []string       `json:"notes,omitempty"`
	Rows             []Row          `json:"rows"`
	Curves           []Curve        `json:"-"`
}

// Headline returns, per model, the dense "all" metrics of every section merged (a later
// section wins a clashing key, so the retrieval sections' recall@1 overrides in-batch's).
func (r *Report) Headline() map[string]map[string]float64 {
	out := map[string]map[string]float64{}
	for _, row := range r.Rows {
		if row.Retrieval != "dense" || row.Subset != "all" {
			continue
		}
		if out[row.Model] == nil {
			out[row.Model] = map[string]float64{}
		}
		for k, v := range row.Metrics {
			out[row.Model][k] = v
		}
	}
	return out
}

// MarshalJSON writes one object: the headline metrics of the tuned model (else the base) at
// the top level, keyed "ndcg@10", "recall@30", "mrr@30", "mrr@5" ...; "base" and "tuned" with
// each model's headline metrics; "sections" with each section's dense "all" metrics per
// model; and every row.
func (r *Report) MarshalJSON() ([]byte, error) {
	out := map[string]any{}
	head := r.Headline()
	top := head[Base]
	if t, ok := head[Tuned]; ok {
		top = t
	}
	for k, v := range top {
		out[k] = Round4(v)
	}
	for model, m := range head {
		out[model] = roundAll(m)
	}
	sections := map[string]map[string]any{}
	for _, row := range r.Rows {
		if row.Subset != "all" {
			continue
		}
		if sections[row.Section] == nil {
			sections[row.Section] = map[string]any{}
		}
		key := row.Model
		if row.Retrieval != "dense" {
			key = row.Retrieval + " " + row.Model
			if row.Model == "-" {
				key = row.Retrieval
			}
		}
		sections[row.Section][key] = roundAll(row.Metrics)
	}
	out["sections"] = sections
	rows := make([]Row, len(r.Rows))
	for i, row := range r.Rows {
		row.Metrics = roundAll(row.Metrics)
		rows[i] = row
	}
	out["rows"] = rows
	out["name"] = r.Name
	for k, v := range map[string]any{"base_fingerprint": r.BaseFingerprint, "tuned_fingerprint": r.TunedFingerprint, "adapter": r.Adapter} {
		if v != "" {
			out[k] = v
		}
	}
	if r.Training != nil {
		out["training"] = r.Training
	}
	if len(r.Notes) > 0 {
		out["notes"] = r.Notes
	}
	return json.Marshal(out)
}

// Round4 rounds v to 4 decimals, as reports and training notes show numbers.
func Round4(v float64) float64 { return float64(int64(v*1e4+0.5)) / 1e4 }

func roundAll(m map[string]float64) map[string]float64 {
	out := make(map[string]float64, len(m))
	for k, v := range m {
		out[k] = Round4(v)
	}
	return out
}

// WriteMarkdown writes one table per section; each metric column shows the base value, and
// the tuned value and change when an adapter was evaluated ("0.213 → 0.305 (+0.092)").
func (r *Report) WriteMarkdown(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "## %s\n\n", r.Name)
	if r.BaseFingerprint != "" {
		fmt.Fprintf(&b, "- base model: `%s`\n", short(r.BaseFingerprint))
	}
	if r.TunedFingerprint != "" {
		fmt.Fprintf(&b, "- tuned model: `%s` (adapter %s)\n", short(r.TunedFingerprint), r.Adapter)
	}
	if len(r.Training) > 0 {
		keys := make([]string, 0, len(r.Training))
		for k := range r.Training {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		parts := make([]string, len(keys))
		for i, k := range keys {
			parts[i] = fmt.Sprintf("%s=%v", k, r.Training[k])
		}
		fmt.Fprintf(&b, "- training: %s\n", strings.Join(parts, ", "))
	}
	for _, n := range r.Notes {
		fmt.Fprintf(&b, "- %s\n", n)
	}
	for _, sec := range r.sections() {
		fmt.Fprintf(&b, "\n### %s\n\n", sec)
		r.sectionTable(&b, sec)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func (r *Report) sections() []string {
	var out []string
	seen := map[string]bool{}
	for _, row := range r.Rows {
		if !seen[row.Section] {
			seen[row.Section] = true
			out = append(out, row.Section)
		}
	}
	return out
}

type rowKey struct{ retrieval, subset string }

func (r *Report) sectionTable(b *strings.Builder, sec string) {
	var keys []rowKey
	byKey := map[rowKey]map[string]Row{}
	var metricNames []string
	seenMetric := map[string]bool{}
	for _, row := range r.Rows {
		if row.Section != sec {
			continue
		}
		k := rowKey{row.Retrieval, row.Subset}
		if byKey[k] == nil {
			byKey[k] = map[string]Row{}
			keys = append(keys, k)
		}
		byKey[k][row.Model] = row
		for m := range row.Metrics {
			if !seenMetric[m] {
				seenMetric[m] = true
				metricNames = append(metricNames, m)
			}
		}
	}
	sortMetricNames(metricNames)
	b.WriteString("| retrieval | subset | queries |")
	for _, m := range metricNames {
		fmt.Fprintf(b, " %s |", m)
	}
	b.WriteString("\n|---|---|---:|")
	for range metricNames {
		b.WriteString("---|")
	}
	b.WriteString("\n")
	for _, k := range keys {
		models := byKey[k]
		base, hasBase := models[Base]
		tuned, hasTuned := models[Tuned]
		if !hasBase && !hasTuned {
			base, hasBase = models["-"]
		}
		n := base.Queries
		if !hasBase {
			n = tuned.Queries
		}
		fmt.Fprintf(b, "| %s | %s | %d |", k.retrieval, k.subset, n)
		for _, m := range metricNames {
			switch {
			case hasBase && hasTuned:
				bv, tv := base.Metrics[m], tuned.Metrics[m]
				fmt.Fprintf(b, " %.3f → %.3f (%+.3f) |", bv, tv, tv-bv)
			case hasBase:
				fmt.Fprintf(b, " %.3f |", base.Metrics[m])
			default:
				fmt.Fprintf(b, " %.3f (tuned) |", tuned.Metrics[m])
			}
		}
		b.WriteString("\n")
	}
}

// sortMetricNames orders metric keys by name (mrr, recall, ndcg, hit), then cutoff.
func sortMetricNames(ms []string) {
	rank := map[string]int{"mrr": 0, "recall": 1, "ndcg": 2, "hit": 3}
	sort.Slice(ms, func(i, j int) bool {
		ni, ki, _ := strings.Cut(ms[i], "@")
		nj, kj, _ := strings.Cut(ms[j], "@")
		if ni != nj {
			return rank[ni] < rank[nj]
		}
		var a, b int
		fmt.Sscan(ki, &a)
		fmt.Sscan(kj, &b)
		return a < b
	})
}

func short(fp string) string {
	if len(fp) > 12 {
		return fp[:12]
	}
	return fp
}

// Save writes the report as PATH.json and PATH.md (PATH without extension), creating the folder.
func (r *Report) Save(prefix string) error {
	if dir := filepath.Dir(prefix); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
	}
	j, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(prefix+".json", append(j, '\n'), 0o644); err != nil {
		return err
	}
	f, err := os.Create(prefix + ".md")
	if err != nil {
		return err
	}
	if err := r.WriteMarkdown(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
