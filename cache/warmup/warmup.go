package warmup

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/time/rate"

	"github.com/podsearch/podsearch/cache"
	"github.com/podsearch/podsearch/cache/querylog"
	"github.com/podsearch/podsearch/core/encoder"
)

// Tokenizer is the part of tokenizer.Tokenizer that warm-up needs.
type Tokenizer interface {
	Encode(text string) []int32
}

// Options configures Run.
type Options struct {
	// Tokenizer turns queries into token ids (the encoder's tokenizer, *tokenizer.Unigram).
	Tokenizer Tokenizer
	// Cache is where vectors are looked up and stored.
	Cache *cache.Cache
	// Encoder computes the missing vectors (the encoder pool); it must be the model the
	// cache is keyed by.
	Encoder encoder.Embedder
	// BatchSize is the sequences per encoder call (default 64).
	BatchSize int
	// Rate bounds the sequences sent to the encoder per second; 0 means no limit.
	Rate float64
	// Retries is how many times a failed encoder call is tried again, after a pause that
	// doubles from RetryBackoff (default 4; negative: none). A pool whose members are all
	// busy or restarting usually recovers within seconds.
	Retries int
	// RetryBackoff is the first pause before a retry (default 1s; at most 30s per pause).
	RetryBackoff time.Duration
	// LookupBatch is the sequences per cache lookup round trip (default 1000).
	LookupBatch int
	// Progress, when set, receives a progress bar.
	Progress io.Writer
	// Logger (default slog.Default()).
	Logger *slog.Logger
}

// Report is the outcome of a run; its JSON form is the output of `podsearch warmup --json`.
// Query counts are distinct normalised queries: Queries = AlreadyCached + Encoded + Skipped
// (on a complete run).
type Report struct {
	// Queries is the number of distinct normalised queries read.
	Queries int `json:"queries"`
	// Requests is the sum of their counts (the traffic the log represents).
	Requests int64 `json:"requests"`
	// AlreadyCached is the number of queries whose vector was cached before the run.
	AlreadyCached int `json:"already_cached"`
	// Encoded is the number of queries whose vector this run computed and stored.
	Encoded int `json:"encoded"`
	// EncoderSequences is the distinct token sequences sent to the encoder (queries that
	// tokenize the same share one).
	EncoderSequences int `json:"encoder_sequences"`
	// Skipped is the number of queries that tokenize to nothing.
	Skipped int `json:"skipped"`
	// HitRatioBefore and HitRatioAfter are the fractions of distinct queries cached before
	// and after the run; the Weighted ones weigh each query by its count.
	HitRatioBefore         float64 `json:"hit_ratio_before"`
	HitRatioAfter          float64 `json:"hit_ratio_after"`
	WeightedHitRatioBefore float64 `json:"weighted_hit_ratio_before"`
	WeightedHitRatioAfter  float64 `json:"weighted_hit_ratio_after"`
	// Seconds is the wall time of the run; EncodeSeconds the part spent in encoder calls.
	Seconds       float64 `json:"seconds"`
	EncodeSeconds float64 `json:"encode_seconds"`
	// SharedTier says whether the vectors went to Redis (false: in-process only, gone when
	// the process ends).
	SharedTier bool `json:"shared_tier"`
}

// job is one distinct token sequence and the queries that produce it.
type job struct {
	ids     []int32
	queries int
	weight  int64
}

// Run warms the cache with entries (as returned by querylog.Read) and reports what it did.
// On an error or cancellation it returns the report so far with the error.
func Run(ctx context.Context, entries []querylog.Entry, opts Options) (Report, error) {
	start := time.Now()
	if opts.Tokenizer == nil || opts.Cache == nil || opts.Encoder == nil {
		return Report{}, errors.New("warmup: tokenizer, cache and encoder are required")
	}
	if opts.BatchSize <= 0 {
		opts.BatchSize = 64
	}
	if opts.Retries == 0 {
		opts.Retries = 4
	}
	if opts.RetryBackoff <= 0 {
		opts.RetryBackoff = time.Second
	}
	if opts.LookupBatch <= 0 {
		opts.LookupBatch = 1000
	}
	if opts.Rate < 0 {
		return Report{}, errors.New("warmup: rate must not be negative")
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if fc, fe := opts.Cache.Fingerprint(), opts.Encoder.Fingerprint(); fc != fe {
		return Report{}, fmt.Errorf("warmup: the cache is keyed by model %.12s but the encoder serves %.12s", fc, fe)
	}
	rep := Report{Queries: len(entries), SharedTier: opts.Cache.HasRedis()}
	done := func(err error) (Report, error) {
		rep.Seconds = time.Since(start).Seconds()
		return rep, err
	}

	// Tokenize and group queries by token sequence.
	var jobs []*job
	bySeq := map[string]*job{}
	for _, e := range entries {
		rep.Requests += e.Count
		ids := encoder.Clip(opts.Tokenizer.Encode(e.Query))
		if len(ids) == 0 {
			rep.Skipped++
			continue
		}
		k := seqKey(ids)
		j, ok := bySeq[k]
		if !ok {
			j = &job{ids: ids}
			bySeq[k] = j
			jobs = append(jobs, j)
		}
		j.queries++
		j.weight += e.Count
	}

	// Before: what is cached already.
	cached, err := cachedFlags(ctx, opts, jobs)
	if err != nil {
		return done(err)
	}
	var todo []*job
	var weightCached int64
	for i, j := range jobs {
		if cached[i] {
			rep.AlreadyCached += j.queries
			weightCached += j.weight
		} else {
			todo = append(todo, j)
		}
	}
	rep.HitRatioBefore = ratio(int64(rep.AlreadyCached), int64(rep.Queries))
	rep.WeightedHitRatioBefore = ratio(weightCached, rep.Requests)

	// Encode what is missing, batch by batch; a writer goroutine stores batch i while the
	// encoder works on batch i+1.
	var bar *progressbar.ProgressBar
	if opts.Progress != nil && len(todo) > 0 {
		bar = progressbar.NewOptions(len(todo), progressbar.OptionSetWriter(opts.Progress),
			progressbar.OptionSetDescription("warmup: encoding"), progressbar.OptionShowCount(),
			progressbar.OptionShowIts(), progressbar.OptionSetItsString("queries"),
			progressbar.OptionThrottle(200*time.Millisecond), progressbar.OptionOnCompletion(func() {
				fmt.Fprintln(opts.Progress)
			}))
	}
	var limiter *rate.Limiter
	if opts.Rate > 0 {
		limiter = rate.NewLimiter(rate.Limit(opts.Rate), opts.BatchSize)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type written struct {
		jobs []*job
		vecs [][]float32
	}
	toWrite := make(chan written, 1)
	writeErr := make(chan error, 1)
	go func() {
		var first error
		for w := range toWrite {
			if first != nil {
				continue
			}
			ids := make([][]int32, len(w.jobs))
			for i, j := range w.jobs {
				ids[i] = j.ids
			}
			// Not cancelled with the run: a batch already encoded is worth its write (bounded
			// by the cache's write timeout), so an interruption loses no encoder work.
			if err := opts.Cache.Store(context.WithoutCancel(ctx), ids, w.vecs); err != nil {
				first = err
				cancel()
				continue
			}
			for _, j := range w.jobs {
				rep.Encoded += j.queries
				rep.EncoderSequences++
			}
			if bar != nil {
				_ = bar.Add(len(w.jobs))
			}
		}
		writeErr <- first
	}()
	var encErr error
	var encodeTime time.Duration
	for lo := 0; lo < len(todo) && encErr == nil; lo += opts.BatchSize {
		if encErr = ctx.Err(); encErr != nil {
			break
		}
		batch := todo[lo:min(lo+opts.BatchSize, len(todo))]
		if limiter != nil {
			if encErr = limiter.WaitN(ctx, len(batch)); encErr != nil {
				break
			}
		}
		ids := make([][]int32, len(batch))
		for i, j := range batch {
			ids[i] = j.ids
		}
		t0 := time.Now()
		vecs, err := embedWithRetries(ctx, opts, ids)
		encodeTime += time.Since(t0)
		if err != nil {
			encErr = fmt.Errorf("warmup: encoder: %w", err)
			break
		}
		toWrite <- written{batch, vecs} // the writer drains until close: an encoded batch is always written
	}
	close(toWrite)
	runErr := encErr
	if wErr := <-writeErr; wErr != nil {
		runErr = fmt.Errorf("warmup: writing to the cache: %w", wErr)
	}
	rep.EncodeSeconds = encodeTime.Seconds()
	if runErr == nil && bar != nil {
		_ = bar.Finish()
	}

	// After: ask the cache again (not our own bookkeeping), so the ratio shows what landed;
	// after a failure too, so the report says what a rerun will find.
	actx, acancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	after, err := cachedFlags(actx, opts, jobs)
	acancel()
	if err != nil {
		if runErr == nil {
			runErr = err
		}
		return done(runErr)
	}
	var nAfter, wAfter int64
	for i, j := range jobs {
		if after[i] {
			nAfter += int64(j.queries)
			wAfter += j.weight
		}
	}
	rep.HitRatioAfter = ratio(nAfter, int64(rep.Queries))
	rep.WeightedHitRatioAfter = ratio(wAfter, rep.Requests)
	return done(runErr)
}

// embedWithRetries calls the encoder, trying again after doubling pauses on failure.
func embedWithRetries(ctx context.Context, opts Options, ids [][]int32) ([][]float32, error) {
	pause := opts.RetryBackoff
	for attempt := 0; ; attempt++ {
		vecs, err := opts.Encoder.Embed(ctx, ids)
		if err == nil && len(vecs) != len(ids) {
			err = fmt.Errorf("%d vectors for %d sequences", len(vecs), len(ids))
		}
		if err == nil || ctx.Err() != nil || attempt >= opts.Retries {
			return vecs, err
		}
		opts.Logger.Warn("warmup: encoder call failed; retrying", "sequences", len(ids), "attempt", attempt+1, "pause", pause, "err", err)
		select {
		case <-time.After(pause):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		pause = min(2*pause, 30*time.Second)
	}
}

// cachedFlags asks the cache about every job in round trips of LookupBatch sequences.
func cachedFlags(ctx context.Context, opts Options, jobs []*job) ([]bool, error) {
	out := make([]bool, 0, len(jobs))
	for lo := 0; lo < len(jobs); lo += opts.LookupBatch {
		chunk := jobs[lo:min(lo+opts.LookupBatch, len(jobs))]
		ids := make([][]int32, len(chunk))
		for i, j := range chunk {
			ids[i] = j.ids
		}
		got, err := opts.Cache.Cached(ctx, ids)
		if err != nil {
			return nil, fmt.Errorf("warmup: %w", err)
		}
		out = append(out, got...)
	}
	return out, nil
}

func seqKey(ids []int32) string {
	b := make([]byte, 0, 4*len(ids))
	for _, id := range ids {
		b = append(b, byte(id), byte(id>>8), byte(id>>16), byte(id>>24))
	}
	return string(b)
}

func ratio(a, b int64) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}
