package edge

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"time"
	"unicode/utf8"

	"github.com/podsearch/podsearch/core/encoder"
	"github.com/valyala/fasthttp"
)

// queryResult is the answer to one query.
type queryResult struct {
	// Query is the normalised query text (in POST answers, to pair answers with queries).
	Query   string `json:"query,omitempty"`
	Mode    Mode   `json:"mode"`
	Results []Hit  `json:"results"`
	// Partial is true when some peers' shards did not answer in time; MissingPeers names them.
	Partial      bool     `json:"partial"`
	MissingPeers []string `json:"missing_peers,omitempty"`
	// Degraded says why the query was answered with less than it asked for
	// (e.g. "keyword-only: encoder unavailable").
	Degraded string `json:"degraded,omitempty"`
}

// getResponse is the JSON answer of GET /v1/search.
type getResponse struct {
	queryResult
	Model        string `json:"model"`
	IndexVersion string `json:"index_version"`
}

// postResponse is the JSON answer of POST /v1/search.
type postResponse struct {
	Model        string        `json:"model"`
	IndexVersion string        `json:"index_version"`
	Responses    []queryResult `json:"responses"`
}

func (s *Server) handleSearch(ctx *fasthttp.RequestCtx) {
	start := time.Now()
	if s.lim != nil {
		if ok, wait := s.lim.allow(s.clientKey(ctx), start); !ok {
			s.met.rateLimited.Inc()
			secs := retryAfterSeconds(wait)
			ctx.Response.Header.Set("Retry-After", fmt.Sprint(secs))
			s.writeError(ctx, &apiError{fasthttp.StatusTooManyRequests,
				fmt.Sprintf("rate limit of %g requests/s exceeded; retry in %d s", s.cfg.RateLimit, secs)})
			return
		}
	}
	s.met.inflight.Inc()
	defer s.met.inflight.Dec()
	timer := newStageTimer()
	post := ctx.IsPost()
	var qs []query
	if post {
		var aerr *apiError
		if qs, aerr = s.val.parsePost(ctx.PostBody()); aerr != nil {
			s.writeError(ctx, aerr)
			return
		}
	} else {
		q, aerr := s.val.parseGet(ctx.QueryArgs())
		if aerr != nil {
			s.writeError(ctx, aerr)
			return
		}
		qs = []query{q}
	}
	timer.mark("validate")
	rctx, cancel := context.WithTimeout(context.Background(), s.cfg.RequestTimeout)
	defer cancel()
	sh := s.acquire()
	defer sh.release()
	results, model, aerr := s.run(rctx, sh, qs, timer)
	if aerr != nil {
		s.writeError(ctx, aerr)
		return
	}
	for i, n := range timer.names {
		s.met.stage.WithLabelValues(n).Observe(timer.durs[i].Seconds())
	}
	ctx.Response.Header.Set("Server-Timing", timer.header(time.Since(start)))
	if post {
		for i := range results {
			results[i].Query = qs[i].Text
		}
		s.writeJSON(ctx, fasthttp.StatusOK, postResponse{Model: model, IndexVersion: sh.s.IndexVersion(), Responses: results})
		return
	}
	s.writeJSON(ctx, fasthttp.StatusOK, getResponse{queryResult: results[0], Model: model, IndexVersion: sh.s.IndexVersion()})
}

// run is the query pipeline: tokenize, embed, search the local shards and the peers, merge.
func (s *Server) run(ctx context.Context, sh *shards, qs []query, timer *stageTimer) ([]queryResult, string, *apiError) {
	sr := sh.s
	results := make([]queryResult, len(qs))
	sqs := make([]ShardQuery, len(qs))
	var need []int // queries that need a vector
	for i, q := range qs {
		results[i].Mode = q.Mode
		sqs[i] = ShardQuery{Keywords: q.Text, Filters: q.Filters, K: q.K, Mode: q.Mode}
		if q.Mode == ModeKeyword {
			continue
		}
		if s.cfg.Embedder == nil {
			if q.Mode == ModeDense {
				return nil, "", badRequest("mode dense needs an encoder and this node is keyword-only; use mode=keyword")
			}
			s.degrade(&results[i], &sqs[i], "keyword-only: this node has no encoder")
			continue
		}
		need = append(need, i)
	}
	model := sr.Fingerprint()
	if len(need) > 0 {
		model = s.cfg.Embedder.Fingerprint()
		if err := s.embed(ctx, sh, qs, need, results, sqs, timer); err != nil {
			return nil, "", err
		}
	}

	// Local shards and peers at the same time. With peers, hybrid queries are split into
	// their dense and keyword rankings, fused below over every node's hits.
	sub, parts := sqs, [][]int(nil)
	if len(s.peers.urls) > 0 {
		sub, parts = splitHybrid(sqs, s.cfg.MaxK)
	}
	deadline, _ := ctx.Deadline()
	var peerRes []peerResult
	peersDone := make(chan struct{})
	peerStart := time.Now()
	go func() {
		defer close(peersDone)
		vecModel := ""
		for _, q := range sub {
			if q.Vector != nil {
				vecModel = model
			}
		}
		peerRes = s.peers.search(shardRequest{Model: vecModel, Queries: sub}, deadline)
	}()
	local, err := s.searchLocal(ctx, sh, sub)
	timer.mark("search")
	<-peersDone
	if len(s.peers.urls) > 0 {
		timer.add("fanout", time.Since(peerStart))
		timer.last = time.Now() // merge counts from here, not from the end of the local search
	}
	localGone := false
	if errors.Is(err, ErrShardsUnreadable) {
		// A file of this node's shards changed on disk: answer from the peers' shards,
		// flagged partial, while the node reloads; with no peer answer there is none.
		answered := false
		for _, pr := range peerRes {
			answered = answered || pr.err == nil
		}
		if !answered {
			return nil, "", &apiError{fasthttp.StatusServiceUnavailable,
				"this node's shards are unreadable (a segment file changed on disk); it is reloading them, retry shortly"}
		}
		local, err, localGone = make([][]Hit, len(sub)), nil, true
	}
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return nil, "", &apiError{fasthttp.StatusGatewayTimeout, fmt.Sprintf("search timed out after %v", s.cfg.RequestTimeout)}
		}
		s.log.Error("search failed", "err", err)
		return nil, "", &apiError{fasthttp.StatusInternalServerError, "search failed: " + redactPaths(err.Error())}
	}
	merged := make([][]Hit, len(sub))
	for j := range sub {
		lists := [][]Hit{local[j]}
		for _, pr := range peerRes {
			if pr.err != nil {
				continue
			}
			lists = append(lists, pr.resp.Results[j])
		}
		merged[j] = mergeHits(sub[j].K, lists...)
	}
	for i := range results {
		if parts == nil {
			results[i].Results = merged[i]
			continue
		}
		p := parts[i]
		if len(p) == 1 {
			results[i].Results = merged[p[0]]
			continue
		}
		fused, err := fuseHybrid(merged[p[0]], merged[p[1]], qs[i].K, s.cfg.hybrid(sh.s))
		if err != nil {
			return nil, "", &apiError{fasthttp.StatusInternalServerError, "fusion failed: " + err.Error()}
		}
		results[i].Results = fused
	}
	if localGone {
		for i := range results {
			results[i].Partial = true
			results[i].Degraded = joinReasons(results[i].Degraded, "partial: this node's own shards are unreadable (reloading)")
		}
	}
	for _, pr := range peerRes {
		if pr.err == nil {
			continue
		}
		s.log.Warn("peer failed; answering with partial results", "peer", pr.name, "err", pr.err)
		for i := range results {
			results[i].Partial = true
			results[i].MissingPeers = append(results[i].MissingPeers, pr.name)
		}
	}
	if (len(peerRes) > 0 || localGone) && results[0].Partial {
		s.met.partial.Inc()
	}
	timer.mark("merge")
	return results, model, nil
}

// embed tokenizes and embeds the queries listed in need, filling their vectors. Queries in
// hybrid mode fall back to keyword-only when embedding fails; dense ones fail the request.
func (s *Server) embed(ctx context.Context, sh *shards, qs []query, need []int, results []queryResult, sqs []ShardQuery, timer *stageTimer) *apiError {
	sr := sh.s
	ids := make([][]int32, 0, len(need))
	idx := make([]int, 0, len(need))
	for _, i := range need {
		t, err := sh.tok.Encode(ctx, qs[i].Text)
		if err != nil {
			s.log.Warn("tokenizing failed", "err", err)
			if qs[i].Mode == ModeDense {
				return &apiError{fasthttp.StatusServiceUnavailable, "dense search is unavailable: the tokenizer failed"}
			}
			s.degrade(&results[i], &sqs[i], "keyword-only: the tokenizer failed")
			continue
		}
		if len(t) == 0 {
			if qs[i].Mode == ModeDense {
				return badRequest("q has no text the model can read")
			}
			s.degrade(&results[i], &sqs[i], "keyword-only: the query has no tokens")
			continue
		}
		if len(t) > encoder.MaxTokens {
			t = t[:encoder.MaxTokens]
		}
		ids = append(ids, t)
		idx = append(idx, i)
	}
	timer.mark("tokenize")
	if len(ids) == 0 {
		return nil
	}
	fail := func(reason string) *apiError {
		for _, i := range idx {
			if qs[i].Mode == ModeDense {
				return &apiError{fasthttp.StatusServiceUnavailable, "dense search is unavailable: " + reason}
			}
		}
		for _, i := range idx {
			s.degrade(&results[i], &sqs[i], "keyword-only: "+reason)
		}
		return nil
	}
	if fp, want := s.cfg.Embedder.Fingerprint(), sr.Fingerprint(); fp != "" && want != "" && fp != want {
		s.log.Error("the encoder's model does not match the shards", "encoder", fp, "shards", want)
		return fail("the encoder serves a different model than the shards were built with")
	}
	vecs, err := s.cfg.Embedder.Embed(ctx, ids)
	timer.mark("embed")
	if err == nil && len(vecs) != len(ids) {
		err = fmt.Errorf("encoder returned %d vectors for %d queries", len(vecs), len(ids))
	}
	if err != nil {
		s.log.Warn("embedding failed", "err", err)
		if errors.Is(err, context.DeadlineExceeded) {
			return fail("the encoder did not answer in time")
		}
		return fail("the encoder is unavailable")
	}
	for j, i := range idx {
		if len(vecs[j]) != encoder.Dim {
			return fail(fmt.Sprintf("the encoder returned a %d-d vector", len(vecs[j])))
		}
		if err := checkUnit(vecs[j]); err != nil {
			s.log.Error("the encoder returned an unusable vector", "err", err)
			return fail("the encoder returned an unusable vector")
		}
		sqs[i].Vector = vecs[j]
	}
	return nil
}

func (s *Server) degrade(r *queryResult, q *ShardQuery, why string) {
	r.Degraded = why
	r.Mode = ModeKeyword
	q.Mode = ModeKeyword
	s.met.degraded.Inc()
}

// joinReasons joins two Degraded reasons.
func joinReasons(a, b string) string {
	if a == "" {
		return b
	}
	return a + "; " + b
}

// searchLocal runs the queries on this node's shards and cuts snippets for the hits. When
// a search finds the shards unreadable (ErrShardsUnreadable), they are marked so, a
// reload is started, and later searches skip them until it replaces them.
func (s *Server) searchLocal(ctx context.Context, sh *shards, sqs []ShardQuery) ([][]Hit, error) {
	if sh.unreadable.Load() {
		return nil, ErrShardsUnreadable
	}
	sr := sh.s
	out := make([][]Hit, len(sqs))
	for i, q := range sqs {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		hits, err := sr.Search(ctx, q)
		if err != nil {
			if errors.Is(err, ErrShardsUnreadable) {
				s.unreadable(sh, err)
			}
			return nil, err
		}
		if len(hits) > q.K {
			hits = hits[:q.K]
		}
		for j := range hits {
			if hits[j].Snippet == "" && hits[j].Text != "" {
				hits[j].Snippet = Snippet(hits[j].Text, q.Keywords, s.cfg.SnippetChars)
			}
		}
		out[i] = hits
	}
	return out, nil
}

// handleShardSearch answers a peer: search this node's shards only, with the peer's vectors.
func (s *Server) handleShardSearch(ctx *fasthttp.RequestCtx) {
	switch {
	case s.cfg.PeerToken != "":
		if !bearerOK(ctx, s.cfg.PeerToken) {
			ctx.Response.Header.Set("WWW-Authenticate", `Bearer realm="podsearch-peer"`)
			s.writeError(ctx, &apiError{fasthttp.StatusUnauthorized, "missing or wrong peer bearer token"})
			return
		}
	case !s.cfg.PeerOpen:
		s.writeError(ctx, &apiError{fasthttp.StatusForbidden, "shard-search is disabled: the node has no peer token configured"})
		return
	}
	body := ctx.PostBody()
	if len(body) > s.cfg.MaxQueries*(2*encoder.Dim*4+2*s.cfg.MaxQueryBytes+1024) {
		s.writeError(ctx, tooLarge("shard-search body is %d bytes", len(body)))
		return
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	var req shardRequest
	if err := dec.Decode(&req); err != nil {
		s.writeError(ctx, badRequest("bad shard-search request: %s", jsonProblem(err)))
		return
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		s.writeError(ctx, badRequest("bad shard-search request: data after the JSON object"))
		return
	}
	// A fanning-out node sends a hybrid query as two (its dense and keyword rankings).
	if len(req.Queries) == 0 || len(req.Queries) > 2*s.cfg.MaxQueries {
		s.writeError(ctx, badRequest("shard-search wants 1 to %d queries, not %d", 2*s.cfg.MaxQueries, len(req.Queries)))
		return
	}
	sh := s.acquire()
	defer sh.release()
	for i, q := range req.Queries {
		if err := s.checkShardQuery(q, req.Model, sh.s.Fingerprint()); err != nil {
			err.msg = fmt.Sprintf("queries[%d]: %s", i, err.msg)
			s.writeError(ctx, err)
			return
		}
	}
	rctx, cancel := context.WithTimeout(context.Background(), s.cfg.RequestTimeout)
	defer cancel()
	hits, err := s.searchLocal(rctx, sh, req.Queries)
	if errors.Is(err, ErrShardsUnreadable) {
		s.writeError(ctx, &apiError{fasthttp.StatusServiceUnavailable, "this node's shards are unreadable (a segment file changed on disk); it is reloading them"})
		return
	}
	if err != nil {
		s.log.Error("shard search failed", "err", err)
		s.writeError(ctx, &apiError{fasthttp.StatusInternalServerError, "search failed: " + redactPaths(err.Error())})
		return
	}
	s.writeJSON(ctx, fasthttp.StatusOK, shardResponse{Model: sh.s.Fingerprint(), IndexVersion: sh.s.IndexVersion(), Results: hits})
}

// unitTolerance is how far a query vector's length may be from 1. Query embeddings are
// unit vectors (the model normalises them; float16 transport and rounding stay far
// within 1%); anything else is a bug or an attack, and huge values overflow the scores.
const unitTolerance = 0.05

// checkUnit checks that v is a finite vector of length about 1.
func checkUnit(v []float32) error {
	var ss float64
	for i, x := range v {
		f := float64(x)
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return fmt.Errorf("component %d is not finite", i)
		}
		ss += f * f
	}
	if n := math.Sqrt(ss); math.Abs(n-1) > unitTolerance {
		return fmt.Errorf("length %.4g is not 1 (query vectors are unit vectors)", n)
	}
	return nil
}

func (s *Server) checkShardQuery(q ShardQuery, model, local string) *apiError {
	if _, err := ParseMode(string(q.Mode), ""); err != nil || q.Mode == "" {
		return badRequest("mode must be dense, keyword or hybrid")
	}
	if q.K < 1 || q.K > s.cfg.MaxK {
		return badRequest("k must be between 1 and %d", s.cfg.MaxK)
	}
	if len(q.Keywords) > s.cfg.MaxQueryBytes || !utf8.ValidString(q.Keywords) {
		return badRequest("keywords must be valid UTF-8 of at most %d bytes", s.cfg.MaxQueryBytes)
	}
	if q.Mode == ModeKeyword {
		return nil
	}
	if len(q.Vector) != encoder.Dim {
		return badRequest("a %s query needs a %d-d vector, not %d-d", q.Mode, encoder.Dim, len(q.Vector))
	}
	if model != local {
		return &apiError{fasthttp.StatusConflict, fmt.Sprintf("vectors of model %q cannot search shards of model %q", truncate(model, 80), local)}
	}
	if err := checkUnit(q.Vector); err != nil {
		return badRequest("vector: %v", err)
	}
	return nil
}
