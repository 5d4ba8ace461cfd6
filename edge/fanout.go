package edge

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/valyala/fasthttp"
)

// shardSearchPath is the internal endpoint edges call on their peers: it searches only the
// peer's own shards (no further fan-out) with vectors the caller already computed.
const shardSearchPath = "/v1/shard-search"

// shardRequest is the body of POST /v1/shard-search.
type shardRequest struct {
	// Model is the fingerprint of the query vectors ("" when no query carries one).
	Model   string       `json:"model"`
	Queries []ShardQuery `json:"queries"`
}

// shardResponse is the answer of POST /v1/shard-search: one hit list per query.
type shardResponse struct {
	Model        string  `json:"model"`
	IndexVersion string  `json:"index_version"`
	Results      [][]Hit `json:"results"`
}

// peerSet calls the peer edges that own the other shards.
type peerSet struct {
	urls    []string // shard-search URL of each peer
	names   []string // the peer base URLs, for logs, metrics and responses
	token   string
	timeout time.Duration
	client  *fasthttp.Client
	met     *metrics
}

func newPeerSet(peers []string, token string, timeout time.Duration, met *metrics) (*peerSet, error) {
	p := &peerSet{token: token, timeout: timeout, met: met, client: &fasthttp.Client{
		Name:                "podsearch-edge",
		MaxConnsPerHost:     256,
		MaxIdleConnDuration: 30 * time.Second,
		ReadTimeout:         timeout + time.Second,
		WriteTimeout:        timeout + time.Second,
	}}
	for _, raw := range peers {
		raw = strings.TrimRight(strings.TrimSpace(raw), "/")
		if raw == "" {
			continue
		}
		u, err := url.Parse(raw)
		if err != nil || u.Scheme != "http" || u.Host == "" || (u.Path != "" && u.Path != "/") {
			return nil, fmt.Errorf("edge: peer %q must be a base URL such as http://host:port", raw)
		}
		p.names = append(p.names, raw)
		p.urls = append(p.urls, raw+shardSearchPath)
	}
	return p, nil
}

// peerResult is what one peer answered for a batch of queries.
type peerResult struct {
	name string
	resp shardResponse
	err  error
}

// search sends the queries to every peer in parallel, each call bounded by the peer
// timeout and the request deadline, and returns what each answered. It never waits past
// the earlier of the two.
func (p *peerSet) search(req shardRequest, deadline time.Time) []peerResult {
	if len(p.urls) == 0 {
		return nil
	}
	if d := time.Now().Add(p.timeout); d.Before(deadline) {
		deadline = d
	}
	body, err := json.Marshal(req)
	out := make([]peerResult, len(p.urls))
	var wg sync.WaitGroup
	for i := range p.urls {
		out[i].name = p.names[i]
		if err != nil {
			out[i].err = err
			continue
		}
		wg.Go(func() { out[i].resp, out[i].err = p.call(p.urls[i], body, len(req.Queries), deadline) })
	}
	wg.Wait()
	for i := range out {
		r := &out[i]
		if r.err == nil && req.Model != "" && r.resp.Model != req.Model {
			r.err = fmt.Errorf("peer serves model %q, not %q", r.resp.Model, req.Model)
		}
		if r.err != nil {
			p.met.peerErrors.WithLabelValues(r.name).Inc()
		}
	}
	return out
}

func (p *peerSet) call(u string, body []byte, nq int, deadline time.Time) (shardResponse, error) {
	req := fasthttp.AcquireRequest()
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.SetRequestURI(u)
	req.Header.SetMethod(fasthttp.MethodPost)
	req.Header.SetContentType("application/json")
	if p.token != "" {
		req.Header.Set("Authorization", "Bearer "+p.token)
	}
	req.SetBodyRaw(body)
	var sr shardResponse
	if err := p.client.DoDeadline(req, resp, deadline); err != nil {
		if errors.Is(err, fasthttp.ErrTimeout) {
			return sr, errors.New("no answer before the deadline")
		}
		return sr, err
	}
	if resp.StatusCode() != fasthttp.StatusOK {
		return sr, fmt.Errorf("status %d: %s", resp.StatusCode(), truncate(string(resp.Body()), 200))
	}
	if err := json.Unmarshal(resp.Body(), &sr); err != nil {
		return sr, fmt.Errorf("bad answer: %v", err)
	}
	if len(sr.Results) != nq {
		return sr, fmt.Errorf("answered %d result lists for %d queries", len(sr.Results), nq)
	}
	return sr, nil
}

// mergeHits merges hit lists into the best k by score (ties by id, so the order is
// deterministic), keeping one hit per episode id.
func mergeHits(k int, lists ...[]Hit) []Hit {
	n := 0
	for _, l := range lists {
		n += len(l)
	}
	all := make([]Hit, 0, n)
	seen := make(map[string]int, n)
	for _, l := range lists {
		for _, h := range l {
			if i, dup := seen[h.ID]; dup {
				if h.Score > all[i].Score {
					all[i] = h
				}
				continue
			}
			seen[h.ID] = len(all)
			all = append(all, h)
		}
	}
	sort.Slice(all, func(i, j int) bool {
		if all[i].Score != all[j].Score {
			return all[i].Score > all[j].Score
		}
		return all[i].ID < all[j].ID
	})
	if len(all) > k {
		all = all[:k]
	}
	return all
}
