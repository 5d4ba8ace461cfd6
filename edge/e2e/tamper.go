package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/podsearch/podsearch/cache"
)

// TruncateSegment truncates the first segment file of shard in place to half its size, as
// cp over it, rsync --inplace or a full disk would, and returns the function that writes
// the original bytes back in place. The edge serving that shard must not crash; it
// answers from its peer until the file is whole again. Only for an index the run may
// change (one it built itself).
func (c *Cluster) TruncateSegment(shard int) (file string, restore func() error, err error) {
	segs, err := filepath.Glob(filepath.Join(c.indexDir, fmt.Sprintf("shard-%03d-*.seg", shard)))
	if err != nil || len(segs) == 0 {
		return "", nil, fmt.Errorf("no segment file of shard %d in the index (%v)", shard, err)
	}
	sort.Strings(segs)
	path := segs[0]
	orig, err := os.ReadFile(path)
	if err != nil {
		return "", nil, err
	}
	if err := os.Truncate(path, int64(len(orig)/2)); err != nil {
		return "", nil, err
	}
	restore = func() error {
		f, err := os.OpenFile(path, os.O_WRONLY, 0)
		if err != nil {
			return err
		}
		if _, err := f.WriteAt(orig, 0); err != nil {
			f.Close()
			return err
		}
		return f.Close()
	}
	return filepath.Base(path), restore, nil
}

// Poison is the outcome of a cache-poisoning attempt (PoisonCache).
type Poison struct {
	// QueryA and QueryB are the two queries; the value of A's Redis key was copied over
	// B's (COPY A B REPLACE).
	QueryA, QueryB string `json:"-"`
	// Refused: the edge that read B's key counted the value as refused
	// (podsearch_query_cache_redis_refused_total rose).
	Refused bool `json:"refused"`
	// Reencoded: that edge's answer to B equals the answer to B before the copy (and
	// differs from A's): it encoded B again instead of serving A's vector.
	Reencoded bool `json:"reencoded"`
	// Detail says what went wrong, when something did.
	Detail string `json:"detail,omitempty"`
}

// PoisonCache tries the cache-poisoning attack of a Redis writer: query A and then query
// B are sent to edge 0 (which writes their vectors to Redis), the value of A's key is
// copied over B's, and B is asked of edge 1, whose in-process tier has never seen it, so
// it reads B's key from Redis. The edge must refuse the copied value and re-encode B.
func (c *Cluster) PoisonCache(ctx context.Context, redisURL, queryA, queryB string) (*Poison, error) {
	rc, err := cache.OpenRedis(redisURL)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	p := &Poison{QueryA: queryA, QueryB: queryB}
	newKey := func(q string) ([]string, string, error) {
		before, err := scanKeys(ctx, rc)
		if err != nil {
			return nil, "", err
		}
		ids, err := c.searchMode(ctx, 0, q, "dense", 10)
		if err != nil {
			return nil, "", err
		}
		// The cache writes to Redis in the background: wait for the one new key.
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			after, err := scanKeys(ctx, rc)
			if err != nil {
				return nil, "", err
			}
			var added []string
			for k := range after {
				if !before[k] {
					added = append(added, k)
				}
			}
			if len(added) == 1 {
				return ids, added[0], nil
			}
			if len(added) > 1 {
				return nil, "", fmt.Errorf("%d new cache keys after one query (is other traffic running?)", len(added))
			}
		}
		return nil, "", fmt.Errorf("no cache key written to Redis for %q", q)
	}
	idsA, keyA, err := newKey(queryA)
	if err != nil {
		return nil, err
	}
	idsB, keyB, err := newKey(queryB)
	if err != nil {
		return nil, err
	}
	if slices.Equal(idsA, idsB) {
		return nil, fmt.Errorf("%q and %q have the same answer: pick queries that differ", queryA, queryB)
	}
	if err := rc.Copy(ctx, keyA, keyB, 0, true).Err(); err != nil {
		return nil, fmt.Errorf("COPY: %w", err)
	}
	before, err := c.refusedValues(ctx, 1)
	if err != nil {
		return nil, err
	}
	got, err := c.searchMode(ctx, 1, queryB, "dense", 10)
	if err != nil {
		return nil, err
	}
	after, err := c.refusedValues(ctx, 1)
	if err != nil {
		return nil, err
	}
	p.Refused = after > before
	p.Reencoded = slices.Equal(got, idsB)
	switch {
	case slices.Equal(got, idsA):
		p.Detail = fmt.Sprintf("edge 1 answered %q with the results of %q: it served the copied vector", queryB, queryA)
	case !p.Reencoded:
		p.Detail = fmt.Sprintf("edge 1 answered %q with %v, edge 0 with %v", queryB, got, idsB)
	case !p.Refused:
		p.Detail = "the refused-values counter did not rise (was the value read from Redis?)"
	}
	return p, nil
}

func scanKeys(ctx context.Context, rc redis.UniversalClient) (map[string]bool, error) {
	out := map[string]bool{}
	iter := rc.Scan(ctx, 0, cache.DefaultPrefix+":*", 1000).Iterator()
	for iter.Next(ctx) {
		out[iter.Val()] = true
	}
	return out, iter.Err()
}

// searchMode asks edge i for q in mode and returns the result ids.
func (c *Cluster) searchMode(ctx context.Context, i int, q, mode string, k int) ([]string, error) {
	u := c.Edges[i] + "/v1/search?" + url.Values{"q": {q}, "k": {strconv.Itoa(k)}, "mode": {mode}}.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var a answer
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("edge %d answered %s for %q", i, resp.Status, q)
	}
	if err := json.NewDecoder(resp.Body).Decode(&a); err != nil {
		return nil, err
	}
	ids := make([]string, len(a.Results))
	for j, h := range a.Results {
		ids[j] = h.ID
	}
	return ids, nil
}

// refusedValues is the sum of edge i's podsearch_query_cache_redis_refused_total series.
func (c *Cluster) refusedValues(ctx context.Context, i int) (float64, error) {
	sum := 0.0
	err := c.eachMetric(ctx, i, func(name, value string) {
		if name == "podsearch_query_cache_redis_refused_total" {
			f, _ := strconv.ParseFloat(value, 64)
			sum += f
		}
	})
	return sum, err
}

// MetricFamilies lists the metric names edge i serves on /metrics.
func (c *Cluster) MetricFamilies(ctx context.Context, i int) ([]string, error) {
	seen := map[string]bool{}
	var out []string
	err := c.eachMetric(ctx, i, func(name, _ string) {
		if !seen[name] {
			seen[name] = true
			out = append(out, name)
		}
	})
	return out, err
}

// eachMetric calls fn with the name (labels cut off) and value of every sample edge i
// serves on /metrics.
func (c *Cluster) eachMetric(ctx context.Context, i int, fn func(name, value string)) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.Edges[i]+"/metrics", nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		sp := strings.LastIndexByte(line, ' ')
		if sp < 0 {
			continue
		}
		name := line[:sp]
		if b := strings.IndexByte(name, '{'); b >= 0 {
			name = name[:b]
		}
		fn(name, line[sp+1:])
	}
	return sc.Err()
}

// Alive reports whether every edge still answers /healthz.
func (c *Cluster) Alive(ctx context.Context) error {
	for i, u := range c.Edges {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u+"/healthz", nil)
		if err != nil {
			return err
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return fmt.Errorf("edge %d: %w", i, err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("edge %d: /healthz %s", i, resp.Status)
		}
	}
	return nil
}
