package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"

	"github.com/podsearch/podsearch/internal/loadgen"
)

// LoadOptions configures Run.
type LoadOptions struct {
	// Queries are the query texts (ReadQueries); new queries are drawn from them in order,
	// then as pairs of them.
	Queries []string
	// Rate is the fixed request rate per second; 0 sends as fast as Workers allow.
	Rate int
	// Workers bounds concurrent requests (default 16).
	Workers int
	// Duration is how long requests are sent (default 10s).
	Duration time.Duration
	// Repeat is the fraction of requests that repeat an earlier query (default 0.5). A
	// repeat is drawn from the queries sent at least RepeatLag requests before (default
	// 20), so its first request is over by then and it is a cache hit.
	Repeat    float64
	RepeatLag int
	// K is the number of results asked for (default 10).
	K int
	// Seed makes the query sequence reproducible.
	Seed uint64
	// Timeout bounds one request (default 5s).
	Timeout time.Duration
	// ValidIDs, when set, are the episode ids of the index: every 200 answer's results
	// must be among them.
	ValidIDs map[string]bool
	// Faults, when set, inject faults while the load runs (see Faults).
	Faults *Faults
	// Warmup requests (new queries outside Queries, spread over the edges, one at a time)
	// go before the measured load, so that connections, guests and code are warm in both
	// runs of a comparison. Their answers must be 200.
	Warmup int
}

// Faults is the fault schedule of a run: encoder Encoder killed at 25% of the duration,
// Redis (when set) killed at 40% and restarted at 60%, with Truncate a segment file of
// shard 0 truncated in place at 45% and written back at 55%, and at 75% the Delete top
// results of the load's first query deleted from the index and every edge's shards
// reloaded (a new index version). Answers to requests sent after the reload must not
// hold a deleted episode.
type Faults struct {
	Encoder int
	Redis   *Redis
	Delete  int
	// Truncate changes a served file under edge 0 (only for an index the run may change):
	// the edge must not crash, answers from its peer meanwhile, and reloads once the file
	// is whole again.
	Truncate bool
}

// Event is a fault injected during a run.
type Event struct {
	At   time.Duration `json:"at_ns"` // since the start of the load
	What string        `json:"what"`
	Err  string        `json:"error,omitempty"` // empty when the fault was injected as planned
}

// Latency summarises a class of requests.
type Latency struct {
	N             int
	P50, P99, Max time.Duration
}

// Report counts every request of a run.
type Report struct {
	// Sent is the number of requests the load generator made; Requests the results it
	// got back (answers and transport failures): they must be equal.
	Sent       int
	Requests   int
	Wall       time.Duration // first request sent to last answer
	Throughput float64       // answered requests (any status) per second
	// Codes counts HTTP status codes; 0 is a transport failure (no answer).
	Codes map[int]int
	// Errors counts transport errors by message (at most 20 kinds).
	Errors map[string]int
	// BadAnswers counts 200 answers without results or with ids outside ValidIDs;
	// BadExamples shows a few.
	BadAnswers  int
	BadExamples []string
	// Partial and Degraded count 200 answers flagged partial (a peer missed its deadline)
	// or degraded (keyword-only: no query vector).
	Partial, Degraded int
	// Hit are the repeats of an earlier query (cache hits), Miss the first requests of a
	// query (the encoder runs), All every 200 answer.
	Hit, Miss, All Latency
	// Events are the faults injected.
	Events []Event
	// Deleted are the episodes deleted before the reload, and Reloaded when the reload of
	// every edge was over.
	Deleted  []string
	Reloaded time.Time
	// Uncached says the edges ran without the query cache: Hit and Miss are then just
	// repeated and new queries, all encoded.
	Uncached bool
}

// Failed is the number of requests that did not get a correct 200 answer.
func (r *Report) Failed() int {
	return max(r.Sent, r.Requests) - r.Codes[http.StatusOK] + r.BadAnswers
}

// String is a human-readable summary.
func (r *Report) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "requests %d sent, %d counted, in %.1fs (%.1f/s); failed %d", r.Sent, r.Requests, r.Wall.Seconds(), r.Throughput, r.Failed())
	codes := make([]int, 0, len(r.Codes))
	for c := range r.Codes {
		codes = append(codes, c)
	}
	sort.Ints(codes)
	b.WriteString("; status")
	for _, c := range codes {
		name := fmt.Sprint(c)
		if c == 0 {
			name = "transport-error"
		}
		fmt.Fprintf(&b, " %s:%d", name, r.Codes[c])
	}
	fmt.Fprintf(&b, "; partial %d, degraded %d, bad answers %d\n", r.Partial, r.Degraded, r.BadAnswers)
	for _, l := range []struct {
		name string
		l    Latency
	}{{"repeated (cache hit)", r.Hit}, {"new (cache miss)", r.Miss}, {"all", r.All}} {
		if r.Uncached && l.name != "all" {
			l.name = strings.Fields(l.name)[0] + " (encoded)"
		}
		fmt.Fprintf(&b, "  %-20s n=%-5d p50 %7.2f ms  p99 %7.2f ms  max %7.2f ms\n", l.name, l.l.N, loadgen.Millis(l.l.P50), loadgen.Millis(l.l.P99), loadgen.Millis(l.l.Max))
	}
	for _, e := range r.Events {
		fmt.Fprintf(&b, "  fault at %5.2fs: %s", e.At.Seconds(), e.What)
		if e.Err != "" {
			fmt.Fprintf(&b, " (FAILED: %s)", e.Err)
		}
		b.WriteByte('\n')
	}
	if len(r.Deleted) > 0 {
		fmt.Fprintf(&b, "  deleted before the reload (never answered after it): %s\n", strings.Join(r.Deleted, ", "))
	}
	for msg, n := range r.Errors {
		fmt.Fprintf(&b, "  transport error x%d: %s\n", n, msg)
	}
	for _, s := range r.BadExamples {
		fmt.Fprintf(&b, "  bad answer: %s\n", s)
	}
	return b.String()
}

// Run sends the load to the cluster's edges and counts every answer. Repeats alternate
// between the edges when the cluster shares a Redis tier (hits come from the edge's own
// tier or from Redis); without Redis a query always goes to the same edge, as a sticky
// load balancer would send it.
func Run(ctx context.Context, c *Cluster, sharedCache bool, o LoadOptions) (*Report, error) {
	if len(o.Queries) == 0 {
		return nil, fmt.Errorf("e2e: no queries")
	}
	if o.Workers <= 0 {
		o.Workers = 16
	}
	if o.Duration <= 0 {
		o.Duration = 10 * time.Second
	}
	if o.Repeat == 0 {
		o.Repeat = 0.5
	}
	if o.RepeatLag <= 0 {
		o.RepeatLag = 20
	}
	if o.K <= 0 {
		o.K = 10
	}
	if o.Timeout <= 0 {
		o.Timeout = 5 * time.Second
	}
	if err := warmUp(ctx, c.Edges, o.Warmup, o.Timeout); err != nil {
		return nil, err
	}
	g := &generator{o: o, edges: c.Edges, shared: sharedCache, rng: rand.New(rand.NewPCG(o.Seed, 0x9e3779b97f4a7c15))}
	atk := loadgen.NewAttacker(loadgen.AttackOptions{Rate: o.Rate, Workers: o.Workers, Duration: o.Duration, Timeout: o.Timeout, Name: "e2e"})

	start := time.Now()
	fr := &faultRun{}
	var wg sync.WaitGroup
	fctx, stopFaults := context.WithCancel(ctx)
	if o.Faults != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			fr.run(fctx, c, o.Faults, o.Queries[0], o.Duration, start)
		}()
	}
	results := atk.Run(ctx, g.target)
	stopFaults()
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	r := summarize(results, o.ValidIDs, fr.deleted, fr.reloaded)
	r.Events, r.Uncached, r.Deleted, r.Reloaded = fr.events, c.noCache, fr.deleted, fr.reloaded
	g.mu.Lock()
	r.Sent = g.n
	g.mu.Unlock()
	return r, nil
}

// generator is the vegeta targeter: a reproducible sequence of new and repeated queries.
type generator struct {
	o      LoadOptions
	edges  []string
	shared bool
	mu     sync.Mutex
	rng    *rand.Rand
	sent   []string // distinct queries in the order first sent
	n      int      // requests made
	fresh  int      // new queries made
}

func (g *generator) target(t *vegeta.Target) error {
	g.mu.Lock()
	var q string
	if len(g.sent) > g.o.RepeatLag && g.rng.Float64() < g.o.Repeat {
		q = g.sent[g.rng.IntN(len(g.sent)-g.o.RepeatLag)]
	} else {
		q = newQuery(g.o.Queries, g.fresh)
		g.fresh++
		g.sent = append(g.sent, q)
	}
	e := g.n % len(g.edges)
	if !g.shared {
		h := fnv.New32a()
		h.Write([]byte(q))
		e = int(h.Sum32() % uint32(len(g.edges)))
	}
	g.n++
	g.mu.Unlock()
	t.Method = http.MethodGet
	t.URL = g.edges[e] + "/v1/search?" + url.Values{"q": {q}, "k": {fmt.Sprint(g.o.K)}}.Encode()
	return nil
}

// faultRun injects the schedule of Faults and records what it did.
type faultRun struct {
	events   []Event
	deleted  []string
	reloaded time.Time
}

func (fr *faultRun) run(ctx context.Context, c *Cluster, f *Faults, query string, d time.Duration, start time.Time) {
	at := func(frac float64, what string, fn func() error) {
		wait := time.Until(start.Add(time.Duration(frac * float64(d))))
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		e := Event{At: time.Since(start), What: what}
		if err := fn(); err != nil {
			e.Err = err.Error()
		}
		fr.events = append(fr.events, e)
	}
	at(0.25, fmt.Sprintf("kill encoder %d", f.Encoder), func() error { c.KillEncoder(f.Encoder); return nil })
	if f.Redis != nil {
		at(0.40, "kill redis-server (SIGKILL)", func() error { f.Redis.Kill(); return nil })
	}
	if f.Truncate {
		var restore func() error
		at(0.45, "truncate a segment file of shard 0 (edge 0's) in place to half its size", func() (err error) {
			_, restore, err = c.TruncateSegment(0)
			return err
		})
		at(0.55, "write the segment file back in place (edge 0 reloads it)", func() error {
			if restore == nil {
				return errors.New("nothing to restore: the truncation failed")
			}
			return restore()
		})
	}
	if f.Redis != nil {
		at(0.60, "restart redis-server (empty)", f.Redis.Restart)
	}
	what := "reload the shards of every edge (POST /admin/reload)"
	if f.Delete > 0 {
		what = fmt.Sprintf("delete the top %d episodes of %q from the index, then %s", f.Delete, truncate(query, 40), what)
	}
	at(0.75, what, func() error {
		rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		if f.Delete > 0 {
			ids, err := c.Search(rctx, 0, query, f.Delete)
			if err != nil {
				return err
			}
			if err := c.DeleteEpisodes(ids); err != nil {
				return fmt.Errorf("delete: %w", err)
			}
			fr.deleted = ids
		}
		for i := range c.Edges {
			prev := c.edges[i].srv.IndexVersion()
			v, err := c.Reload(rctx, i)
			if err != nil {
				return fmt.Errorf("edge %d: %w", i, err)
			}
			if f.Delete > 0 && v == prev {
				return fmt.Errorf("edge %d: index version %s unchanged after the delete", i, v)
			}
		}
		fr.reloaded = time.Now()
		if len(fr.deleted) > 0 {
			ids, err := c.Search(rctx, 1, query, 10)
			if err != nil {
				return err
			}
			for _, id := range ids {
				if slices.Contains(fr.deleted, id) {
					return fmt.Errorf("deleted episode %s still answered after the reload", id)
				}
			}
		}
		return nil
	})
}

// answer is the part of a search answer summarize checks.
type answer struct {
	Results []struct {
		ID string `json:"id"`
	} `json:"results"`
	Partial  bool   `json:"partial"`
	Degraded string `json:"degraded"`
}

func summarize(results []*vegeta.Result, valid map[string]bool, deleted []string, reloaded time.Time) *Report {
	r := &Report{Requests: len(results), Codes: map[int]int{}, Errors: map[string]int{}}
	sort.Slice(results, func(i, j int) bool { return results[i].Timestamp.Before(results[j].Timestamp) })
	seen := map[string]bool{}
	var hit, miss, all []time.Duration
	var first, last time.Time
	for i, res := range results {
		if i == 0 {
			first = res.Timestamp
		}
		if end := res.End(); end.After(last) {
			last = end
		}
		q := ""
		if u, err := url.Parse(res.URL); err == nil {
			q = u.Query().Get("q")
		}
		repeat := seen[q]
		seen[q] = true
		r.Codes[int(res.Code)]++
		if res.Code == 0 {
			if len(r.Errors) < 20 || r.Errors[res.Error] > 0 {
				r.Errors[res.Error]++
			}
			continue
		}
		if res.Code != http.StatusOK {
			if len(r.BadExamples) < 5 {
				r.BadExamples = append(r.BadExamples, fmt.Sprintf("%d %s", res.Code, truncate(string(res.Body), 200)))
			}
			continue
		}
		var a answer
		bad := ""
		if err := json.Unmarshal(res.Body, &a); err != nil {
			bad = "undecodable: " + err.Error()
		} else if len(a.Results) == 0 {
			bad = "no results"
		} else {
			for _, h := range a.Results {
				if valid != nil && !valid[h.ID] {
					bad = "unknown episode id " + h.ID
					break
				}
				if !reloaded.IsZero() && res.Timestamp.After(reloaded) && slices.Contains(deleted, h.ID) {
					bad = "episode " + h.ID + " deleted and reloaded before the request, still answered"
					break
				}
			}
		}
		if bad != "" {
			r.BadAnswers++
			if len(r.BadExamples) < 5 {
				r.BadExamples = append(r.BadExamples, fmt.Sprintf("q=%q: %s", truncate(q, 60), bad))
			}
			continue
		}
		if a.Partial {
			r.Partial++
		}
		if a.Degraded != "" {
			r.Degraded++
		}
		all = append(all, res.Latency)
		if repeat {
			hit = append(hit, res.Latency)
		} else {
			miss = append(miss, res.Latency)
		}
	}
	r.Hit, r.Miss, r.All = quantiles(hit), quantiles(miss), quantiles(all)
	r.Wall = last.Sub(first)
	if r.Wall > 0 {
		r.Throughput = float64(r.Requests-r.Codes[0]) / r.Wall.Seconds()
	}
	return r
}

// quantiles summarises latencies (sorted in place) by loadgen's Upper rule.
func quantiles(d []time.Duration) Latency {
	if len(d) == 0 {
		return Latency{}
	}
	loadgen.Sort(d)
	q := func(p float64) time.Duration { return loadgen.Quantile(d, p, loadgen.Upper) }
	return Latency{N: len(d), P50: q(0.50), P99: q(0.99), Max: d[len(d)-1]}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// warmUp sends n sequential queries that the load never uses, round robin over the edges.
func warmUp(ctx context.Context, edges []string, n int, timeout time.Duration) error {
	client := &http.Client{Timeout: timeout}
	for i := range n {
		u := edges[i%len(edges)] + "/v1/search?" + url.Values{"q": {fmt.Sprintf("warm-up query number %d", i)}}.Encode()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err != nil {
			return fmt.Errorf("warm-up: %w", err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("warm-up request %d: %s", i, resp.Status)
		}
	}
	return nil
}
