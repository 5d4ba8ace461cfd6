package gpuencoder

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttpadaptor"

	"github.com/podsearch/podsearch/core/encoder"
	"github.com/podsearch/podsearch/core/tokenizer"
	"github.com/podsearch/podsearch/gpu-encoder/wire"
)

// Config configures a Server.
type Config struct {
	// Backends are the model sessions; each gets its own batch worker. All must share one
	// fingerprint. At least one is required.
	Backends []encoder.Embedder
	// Tokenizer turns "texts" input into token ids; nil refuses texts (token ids only).
	Tokenizer tokenizer.Tokenizer
	// Batch sets dynamic batching and the queue bound.
	Batch BatchConfig
	// MaxRequestSeqs is the most sequences or texts in one request. Default 256.
	MaxRequestSeqs int
	// MaxSeqTokens is the most token ids in one sequence. Default encoder.MaxTokens (texts
	// are clipped to it after tokenizing, as the model would).
	MaxSeqTokens int
	// MaxTextBytes is the longest text accepted, in bytes. Default 64 KiB.
	MaxTextBytes int
	// MaxBodyBytes is the largest request body. Default 4 MiB. A request whose
	// Content-Length exceeds it gets 413 before a byte of its body is read.
	MaxBodyBytes int
	// MaxInflightBytes bounds the body bytes of the requests admitted and not yet answered,
	// each counted by its Content-Length (MaxBodyBytes when the body is chunked). A request
	// that does not fit is refused with 429 and Retry-After before its body is read, so
	// memory stays bounded however many large requests arrive at once. Default 16 x
	// MaxBodyBytes; at least MaxBodyBytes.
	MaxInflightBytes int64
	// MaxConcurrentReads bounds the requests reading, decoding and tokenizing their bodies
	// at once; the others wait for a turn without reading their bodies, up to their
	// deadline. Default twice GOMAXPROCS, at least 4.
	MaxConcurrentReads int
	// Token, when set, is the bearer token every /v1/embed request must carry.
	Token string
	// DefaultTimeout bounds requests that carry no deadline header. Default 30s.
	DefaultTimeout time.Duration
	// Registry receives the metrics and is served on /metrics; nil makes a private one.
	Registry *prometheus.Registry
	// Logger logs service events; nil means slog.Default().
	Logger *slog.Logger
}

// maxHeaderBytes bounds the request line and headers (fasthttp's read buffer); beyond it a
// request gets 431.
const maxHeaderBytes = 8 << 10

// Server is the encoder service. Create it with New, run it with Serve, stop it with Shutdown.
type Server struct {
	cfg     Config
	model   string
	limits  wire.Limits
	b       *batcher
	m       *metrics
	log     *slog.Logger
	http    *fasthttp.Server
	metrics fasthttp.RequestHandler
	ready   atomic.Bool

	reads    chan struct{} // one token per request reading or decoding its body
	inflight atomic.Int64  // body bytes of admitted, unanswered requests
}

// New checks cfg, starts the batch workers and returns a Server ready to Serve.
func New(cfg Config) (*Server, error) {
	if len(cfg.Backends) == 0 {
		return nil, errors.New("gpuencoder: no backend sessions")
	}
	for i, be := range cfg.Backends {
		if be == nil {
			return nil, fmt.Errorf("gpuencoder: backend %d is nil", i)
		}
	}
	model := cfg.Backends[0].Fingerprint()
	for i, be := range cfg.Backends {
		if fp := be.Fingerprint(); fp != model {
			return nil, fmt.Errorf("gpuencoder: backend %d has fingerprint %q, backend 0 has %q", i, fp, model)
		}
	}
	if cfg.MaxRequestSeqs <= 0 {
		cfg.MaxRequestSeqs = 256
	}
	if cfg.MaxSeqTokens <= 0 {
		cfg.MaxSeqTokens = encoder.MaxTokens
	}
	if cfg.MaxTextBytes <= 0 {
		cfg.MaxTextBytes = 64 << 10
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = 4 << 20
	}
	if cfg.MaxInflightBytes <= 0 {
		cfg.MaxInflightBytes = 16 * int64(cfg.MaxBodyBytes)
	}
	if cfg.MaxInflightBytes < int64(cfg.MaxBodyBytes) {
		return nil, fmt.Errorf("gpuencoder: MaxInflightBytes %d is below MaxBodyBytes %d: the largest requests could never be admitted",
			cfg.MaxInflightBytes, cfg.MaxBodyBytes)
	}
	if cfg.MaxConcurrentReads <= 0 {
		cfg.MaxConcurrentReads = max(4, 2*runtime.GOMAXPROCS(0))
	}
	if cfg.DefaultTimeout <= 0 {
		cfg.DefaultTimeout = 30 * time.Second
	}
	cfg.Batch.fill()
	if cfg.MaxRequestSeqs > cfg.Batch.MaxQueueSeqs {
		return nil, fmt.Errorf("gpuencoder: MaxRequestSeqs %d exceeds MaxQueueSeqs %d: such requests could never queue",
			cfg.MaxRequestSeqs, cfg.Batch.MaxQueueSeqs)
	}
	if cfg.Registry == nil {
		cfg.Registry = prometheus.NewRegistry()
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	s := &Server{
		cfg:    cfg,
		model:  model,
		limits: wire.Limits{MaxSeqs: cfg.MaxRequestSeqs, MaxSeqTokens: cfg.MaxSeqTokens},
		m:      newMetrics(cfg.Registry),
		log:    cfg.Logger,
		reads:  make(chan struct{}, cfg.MaxConcurrentReads),
	}
	s.b = newBatcher(cfg.Batch, cfg.Backends, cfg.MaxSeqTokens, s.m)
	s.metrics = fasthttpadaptor.NewFastHTTPHandler(promhttp.HandlerFor(cfg.Registry, promhttp.HandlerOpts{}))
	s.http = &fasthttp.Server{
		Handler:            s.Handle,
		Name:               "podsearch-encoder",
		MaxRequestBodySize: cfg.MaxBodyBytes,
		// Bodies are streamed: the handler decides on admission from the headers, before
		// the body is read (fasthttp would otherwise read every body whole first).
		StreamRequestBody: true,
		ReadTimeout:       time.Minute,
		IdleTimeout:       time.Minute,
		ReadBufferSize:    maxHeaderBytes,
		ErrorHandler:      s.httpError,
		NoDefaultDate:     true,
		Logger:            fasthttpLogger{cfg.Logger},
	}
	s.ready.Store(true)
	return s, nil
}

// Model returns the fingerprint of the model the server runs.
func (s *Server) Model() string { return s.model }

// Serve answers requests on ln until Shutdown.
func (s *Server) Serve(ln net.Listener) error {
	s.log.Info("encoder service listening", "addr", ln.Addr().String(), "sessions", len(s.cfg.Backends),
		"model", s.model, "max_batch_tokens", s.cfg.Batch.MaxBatchTokens, "max_batch_seqs", s.cfg.Batch.MaxBatchSeqs,
		"max_wait", s.cfg.Batch.MaxWait, "max_queue_seqs", s.cfg.Batch.MaxQueueSeqs, "max_body_bytes", s.cfg.MaxBodyBytes,
		"max_inflight_bytes", s.cfg.MaxInflightBytes, "max_concurrent_reads", s.cfg.MaxConcurrentReads, "auth", s.cfg.Token != "")
	return s.http.Serve(ln)
}

// Shutdown stops accepting connections, lets in-flight requests finish (their batches
// run), then stops the batch workers. It returns ctx's error if ctx ends first.
func (s *Server) Shutdown(ctx context.Context) error {
	s.ready.Store(false)
	err := s.http.ShutdownWithContext(ctx)
	done := make(chan struct{})
	go func() { s.b.close(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		if err == nil {
			err = ctx.Err()
		}
	}
	s.log.Info("encoder service stopped", "err", err)
	return err
}

// Handle is the fasthttp handler of every route.
func (s *Server) Handle(ctx *fasthttp.RequestCtx) {
	switch string(ctx.Path()) {
	case wire.EmbedPath:
		if !ctx.IsPost() {
			ctx.Response.Header.Set("Allow", "POST")
			writeError(ctx, fasthttp.StatusMethodNotAllowed, "use POST "+wire.EmbedPath)
			return
		}
		start := time.Now()
		s.embed(ctx)
		code := strconv.Itoa(ctx.Response.StatusCode())
		s.m.requests.WithLabelValues(code).Inc()
		s.m.latency.WithLabelValues(code).Observe(time.Since(start).Seconds())
	case "/healthz":
		ctx.SetContentType("text/plain; charset=utf-8")
		ctx.SetBodyString("ok\n")
	case "/readyz":
		if !s.ready.Load() {
			writeError(ctx, fasthttp.StatusServiceUnavailable, "not ready: shutting down")
			return
		}
		ctx.SetContentType(wire.ContentTypeJSON)
		body, _ := json.Marshal(map[string]any{"ready": true, "model": s.model, "queue_depth": s.b.depth()})
		ctx.SetBody(body)
	case "/metrics":
		s.metrics(ctx)
	default:
		writeError(ctx, fasthttp.StatusNotFound, "no such route; try POST "+wire.EmbedPath)
	}
}

// embed answers POST /v1/embed.
func (s *Server) embed(ctx *fasthttp.RequestCtx) {
	if s.cfg.Token != "" && !s.authorized(ctx.Request.Header.Peek("Authorization")) {
		ctx.Response.Header.Set("WWW-Authenticate", `Bearer realm="podsearch-encoder"`)
		writeError(ctx, fasthttp.StatusUnauthorized, "missing or wrong bearer token")
		return
	}
	deadline, err := s.deadline(ctx)
	if err != nil {
		writeError(ctx, fasthttp.StatusBadRequest, err.Error())
		return
	}
	if !time.Now().Before(deadline) {
		s.m.rejected.WithLabelValues("expired").Inc()
		writeError(ctx, fasthttp.StatusGatewayTimeout, "deadline already expired on arrival; nothing was run")
		return
	}
	respType, ok := negotiate(ctx.Request.Header.Peek("Accept"))
	if !ok {
		writeError(ctx, fasthttp.StatusNotAcceptable, fmt.Sprintf("the Accept header names no type this service writes: %s, %s or %s",
			wire.ContentTypeJSON, wire.ContentTypeF32, wire.ContentTypeF16))
		return
	}
	ct, ok := requestType(ctx.Request.Header.ContentType())
	if !ok {
		s.m.rejected.WithLabelValues("bad_input").Inc()
		ctx.SetConnectionClose() // the body stays unread
		writeError(ctx, fasthttp.StatusUnsupportedMediaType, fmt.Sprintf("this Content-Type is not supported: send %s or %s",
			wire.ContentTypeJSON, wire.ContentTypeTokens))
		return
	}
	seqs, ok := s.admitAndDecode(ctx, ct, deadline)
	if !ok {
		return
	}
	j := newJob(seqs, deadline)
	if err := s.b.submit(j); err != nil {
		if errors.Is(err, errQueueFull) {
			s.queueFull(ctx)
			return
		}
		writeError(ctx, fasthttp.StatusServiceUnavailable, err.Error())
		return
	}
	t := time.NewTimer(time.Until(deadline))
	defer t.Stop()
	select {
	case <-j.done:
	case <-t.C:
		j.fail(errExpired)
	}
	<-j.done
	if j.err != nil {
		if errors.Is(j.err, errExpired) {
			writeError(ctx, fasthttp.StatusGatewayTimeout, j.err.Error())
			return
		}
		s.log.Warn("embed failed", "err", j.err)
		writeError(ctx, fasthttp.StatusInternalServerError, j.err.Error())
		return
	}
	ctx.Response.Header.Set(wire.HeaderModel, s.model)
	ctx.SetContentType(respType)
	switch respType {
	case wire.ContentTypeF32:
		ctx.SetBody(wire.EncodeEmbeddings(nil, s.model, j.out, wire.Float32))
	case wire.ContentTypeF16:
		ctx.SetBody(wire.EncodeEmbeddings(nil, s.model, j.out, wire.Float16))
	default:
		ctx.SetBody(wire.AppendJSONEmbeddings(make([]byte, 0, 16+len(j.out)*encoder.Dim*11), s.model, j.out))
	}
}

// authorized checks an Authorization header against the token in constant time. The
// scheme is case-insensitive (RFC 7235), as on the edge: "bearer" is accepted.
func (s *Server) authorized(h []byte) bool {
	scheme, tok, ok := bytes.Cut(bytes.TrimSpace(h), []byte(" "))
	if !ok || !bytes.EqualFold(scheme, []byte("Bearer")) {
		return false
	}
	return subtle.ConstantTimeCompare(bytes.TrimSpace(tok), []byte(s.cfg.Token)) == 1
}

// deadline reads X-Deadline-Ms (milliseconds the caller still waits), capped by the
// server's default timeout.
func (s *Server) deadline(ctx *fasthttp.RequestCtx) (time.Time, error) {
	now := time.Now()
	d := s.cfg.DefaultTimeout
	if h := ctx.Request.Header.Peek(wire.HeaderDeadline); len(h) > 0 {
		ms, err := strconv.ParseInt(string(bytes.TrimSpace(h)), 10, 64)
		if err != nil {
			return time.Time{}, fmt.Errorf("header %s must be whole milliseconds", wire.HeaderDeadline)
		}
		if ms <= 0 {
			return now, nil
		}
		d = min(d, time.Duration(ms)*time.Millisecond)
	}
	return now.Add(d), nil
}

// Admission errors of a request whose body is not (fully) decoded.
var (
	errWaitExpired = errors.New("deadline expired before the request's body was read; nothing was run")
	errRunExpired  = errors.New("deadline expired while the request was decoded; nothing was run")
)

// queueFull answers 429 with Retry-After for a request the queue has no room for.
func (s *Server) queueFull(ctx *fasthttp.RequestCtx) {
	s.m.rejected.WithLabelValues("queue_full").Inc()
	ctx.Response.Header.Set("Retry-After", strconv.Itoa(s.b.retryAfter()))
	writeError(ctx, fasthttp.StatusTooManyRequests, fmt.Sprintf("overloaded: the queue holds its limit of %d sequences; retry later or elsewhere", s.cfg.Batch.MaxQueueSeqs))
}

// admitAndDecode admits the request, reads its body and decodes it into token-id
// sequences; false means it has answered. Everything a refusal depends on is checked
// from the headers first, cheapest first: the declared size (413), a full queue and the
// bytes already in flight (429), then a turn to read (waited for up to the deadline). A
// request whose deadline passes on the way is answered 504 and never tokenized.
func (s *Server) admitAndDecode(ctx *fasthttp.RequestCtx, ct string, deadline time.Time) ([][]int32, bool) {
	stream := ctx.RequestBodyStream()
	size := ctx.Request.Header.ContentLength()
	if stream == nil { // the body is already in memory (a handler called directly)
		size = len(ctx.Request.Body())
	}
	if size > s.cfg.MaxBodyBytes {
		s.m.rejected.WithLabelValues("too_large").Inc()
		ctx.SetConnectionClose()
		writeError(ctx, fasthttp.StatusRequestEntityTooLarge, fmt.Sprintf("request body exceeds the limit of %d bytes", s.cfg.MaxBodyBytes))
		return nil, false
	}
	if s.b.depth() >= s.cfg.Batch.MaxQueueSeqs {
		ctx.SetConnectionClose()
		s.queueFull(ctx)
		return nil, false
	}
	charge := int64(max(size, 0))
	if size == -1 { // chunked: the size is known only once read
		charge = int64(s.cfg.MaxBodyBytes)
	}
	if !s.admitBytes(charge) {
		s.m.rejected.WithLabelValues("inflight_bytes").Inc()
		ctx.SetConnectionClose()
		ctx.Response.Header.Set("Retry-After", strconv.Itoa(s.b.retryAfter()))
		writeError(ctx, fasthttp.StatusTooManyRequests, fmt.Sprintf("overloaded: the requests in flight hold the limit of %d body bytes; retry later or elsewhere", s.cfg.MaxInflightBytes))
		return nil, false
	}
	defer s.releaseBytes(charge)
	if !s.acquireRead(deadline) {
		s.m.rejected.WithLabelValues("expired").Inc()
		ctx.SetConnectionClose()
		writeError(ctx, fasthttp.StatusGatewayTimeout, errWaitExpired.Error())
		return nil, false
	}
	defer func() { <-s.reads }()
	var body []byte
	if stream == nil {
		body = ctx.Request.Body()
	} else {
		// The body must arrive within the request's deadline, not fasthttp's minute.
		_ = ctx.SetReadDeadline(deadline)
		var err error
		if body, err = readBody(stream, size, s.cfg.MaxBodyBytes); err != nil {
			ctx.SetConnectionClose()
			var netErr net.Error
			switch {
			case errors.Is(err, wire.ErrLimit):
				s.m.rejected.WithLabelValues("too_large").Inc()
				writeError(ctx, fasthttp.StatusRequestEntityTooLarge, fmt.Sprintf("request body exceeds the limit of %d bytes", s.cfg.MaxBodyBytes))
			case errors.As(err, &netErr) && netErr.Timeout():
				s.m.rejected.WithLabelValues("expired").Inc()
				writeError(ctx, fasthttp.StatusRequestTimeout, "the request body was not received within the request's deadline")
			default:
				s.m.rejected.WithLabelValues("bad_input").Inc()
				writeError(ctx, fasthttp.StatusBadRequest, "the request body could not be read to its announced length")
			}
			return nil, false
		}
	}
	seqs, err := s.decode(ct, body, deadline)
	if err != nil {
		switch {
		case errors.Is(err, errQueueFull):
			s.queueFull(ctx)
		case errors.Is(err, errRunExpired):
			s.m.rejected.WithLabelValues("expired").Inc()
			writeError(ctx, fasthttp.StatusGatewayTimeout, err.Error())
		case errors.Is(err, wire.ErrLimit):
			s.m.rejected.WithLabelValues("bad_input").Inc()
			writeError(ctx, fasthttp.StatusRequestEntityTooLarge, err.Error())
		default:
			s.m.rejected.WithLabelValues("bad_input").Inc()
			writeError(ctx, fasthttp.StatusBadRequest, err.Error())
		}
		return nil, false
	}
	if !time.Now().Before(deadline) {
		s.m.rejected.WithLabelValues("expired").Inc()
		writeError(ctx, fasthttp.StatusGatewayTimeout, errRunExpired.Error())
		return nil, false
	}
	return seqs, true
}

// admitBytes reserves n bytes of the in-flight budget, or reports that they do not fit.
func (s *Server) admitBytes(n int64) bool {
	for {
		cur := s.inflight.Load()
		if cur+n > s.cfg.MaxInflightBytes {
			return false
		}
		if s.inflight.CompareAndSwap(cur, cur+n) {
			s.m.inflightBytes.Set(float64(cur + n))
			return true
		}
	}
}

func (s *Server) releaseBytes(n int64) {
	s.m.inflightBytes.Set(float64(s.inflight.Add(-n)))
}

// acquireRead waits for a turn to read and decode a body, until deadline.
func (s *Server) acquireRead(deadline time.Time) bool {
	select {
	case s.reads <- struct{}{}:
		return true
	default:
	}
	t := time.NewTimer(time.Until(deadline))
	defer t.Stop()
	select {
	case s.reads <- struct{}{}:
		if time.Now().Before(deadline) {
			return true
		}
		<-s.reads
		return false
	case <-t.C:
		return false
	}
}

// readBody reads a streamed body of size bytes (-1: chunked, up to limit) into memory of
// its own (not fasthttp's pooled buffers, which keep their largest size).
func readBody(r io.Reader, size, limit int) ([]byte, error) {
	if size >= 0 {
		b := make([]byte, size)
		_, err := io.ReadFull(r, b)
		return b, err
	}
	b, err := io.ReadAll(io.LimitReader(r, int64(limit)+1))
	if err == nil && len(b) > limit {
		return nil, fmt.Errorf("%w: body over %d bytes", wire.ErrLimit, limit)
	}
	return b, err
}

// requestType returns the media type of a Content-Type header among those the service
// reads (JSON, also sent as text/plain or a form by bare clients, and binary token ids).
func requestType(h []byte) (string, bool) {
	ct := string(h)
	if i := strings.IndexByte(ct, ';'); i >= 0 {
		ct = ct[:i]
	}
	ct = strings.ToLower(strings.TrimSpace(ct))
	switch ct {
	case wire.ContentTypeTokens:
		return ct, true
	case wire.ContentTypeJSON, "", "text/plain", "application/x-www-form-urlencoded":
		return wire.ContentTypeJSON, true
	}
	return "", false
}

// decode turns a body of media type ct into token-id sequences. Texts are tokenized only
// while the deadline holds and when the queue has room for them.
func (s *Server) decode(ct string, body []byte, deadline time.Time) ([][]int32, error) {
	if ct == wire.ContentTypeTokens {
		return wire.DecodeTokens(body, s.limits)
	}
	return s.decodeJSON(body, deadline)
}

func (s *Server) decodeJSON(body []byte, deadline time.Time) ([][]int32, error) {
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, errors.New(`empty body: send {"texts": [...]} or {"token_ids": [[...], ...]}`)
	}
	if !utf8.Valid(body) {
		return nil, fmt.Errorf("body is not valid UTF-8 (byte offset %d): texts must be UTF-8", invalidUTF8At(body))
	}
	var req jsonRequest
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return nil, jsonError(err)
	}
	if dec.More() {
		return nil, errors.New("invalid JSON: more than one value in the body")
	}
	switch {
	case req.Texts != nil && req.TokenIDs != nil:
		return nil, errors.New(`send either "texts" or "token_ids", not both`)
	case req.TokenIDs != nil:
		seqs := make([][]int32, len(req.TokenIDs))
		for i, q := range req.TokenIDs {
			seqs[i] = q
		}
		return seqs, wire.ValidateTokens(seqs, s.limits)
	case req.Texts != nil:
		for i, t := range req.Texts {
			// encoding/json turns a lone surrogate escape (\ud800) into U+FFFD silently; a
			// U+FFFD the body never spelled out is such a replacement.
			if strings.ContainsRune(t, utf8.RuneError) && !bytes.Contains(body, []byte("\uFFFD")) &&
				!bytes.Contains(bytes.ToLower(body), []byte(`\ufffd`)) {
				return nil, fmt.Errorf("texts[%d] is not valid UTF-8 (an unpaired surrogate escape)", i)
			}
		}
		return s.tokenize(req.Texts, deadline)
	}
	return nil, errors.New(`no input: send {"texts": [...]} or {"token_ids": [[...], ...]}`)
}

// jsonRequest is wire.JSONRequest as the service decodes it: token ids go through
// tokenSeq, which refuses null (encoding/json would leave it as token 0).
type jsonRequest struct {
	Texts    []string   `json:"texts"`
	TokenIDs []tokenSeq `json:"token_ids"`
}

// tokenSeq is one token-id sequence of a JSON request.
type tokenSeq []int32

// errTokenDType is the error of a token id that is not a JSON integer in int32's range.
var errTokenDType = fmt.Errorf("wrong dtype: token_ids must be arrays of integers 0..%d", wire.VocabSize-1)

// UnmarshalJSON reads a JSON array of integers; null, as the array or as an id, is refused.
func (q *tokenSeq) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) < 2 || b[0] != '[' || b[len(b)-1] != ']' {
		return fmt.Errorf("%w, got a JSON %s", errTokenDType, jsonKind(b))
	}
	inner := bytes.TrimSpace(b[1 : len(b)-1])
	out := make([]int32, 0, bytes.Count(inner, []byte(","))+1)
	if len(inner) == 0 {
		*q = out
		return nil
	}
	for len(inner) > 0 {
		tok, rest, _ := bytes.Cut(inner, []byte(","))
		tok = bytes.TrimSpace(tok)
		id, err := strconv.ParseInt(string(tok), 10, 32)
		if err != nil || tok[0] == '+' || (len(tok) > 1 && tok[0] == '0') || (len(tok) > 2 && tok[0] == '-' && tok[1] == '0') {
			return fmt.Errorf("%w, got a JSON %s", errTokenDType, jsonKind(tok))
		}
		out = append(out, int32(id))
		inner = rest
	}
	*q = out
	return nil
}

// jsonKind names the kind of a JSON value by its first byte (for error messages that must
// not echo the value).
func jsonKind(b []byte) string {
	if len(b) == 0 {
		return "nothing"
	}
	switch c := b[0]; {
	case c == 'n':
		return "null"
	case c == 't' || c == 'f':
		return "bool"
	case c == '"':
		return "string"
	case c == '[':
		return "array"
	case c == '{':
		return "object"
	case c == '-' || (c >= '0' && c <= '9'):
		return "number"
	}
	return "value"
}

// jsonError turns an encoding/json decoding error into a message that names fields as the
// protocol spells them and never a Go type or the body's text.
func jsonError(err error) error {
	var (
		te *json.UnmarshalTypeError
		se *json.SyntaxError
	)
	switch {
	case errors.Is(err, errTokenDType):
		return err
	case errors.As(err, &te) && strings.HasPrefix(te.Field, "token_ids"):
		return fmt.Errorf("%w, got a JSON %s", errTokenDType, te.Value)
	case errors.As(err, &te) && strings.HasPrefix(te.Field, "texts"):
		return fmt.Errorf("wrong dtype: texts must be an array of strings, got a JSON %s", te.Value)
	case errors.As(err, &te):
		return fmt.Errorf(`invalid JSON: the body must be an object {"texts": [...]} or {"token_ids": [[...], ...]}, got a JSON %s`, te.Value)
	case errors.As(err, &se):
		return fmt.Errorf("invalid JSON at byte offset %d", se.Offset)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return errors.New("invalid JSON: the body ends inside a value")
	}
	if f, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		if len(f) > 40 {
			f = f[:40] + "..."
		}
		return fmt.Errorf(`invalid JSON: unknown field %s (send "texts" or "token_ids")`, f)
	}
	return errors.New("invalid JSON")
}

// tokenize turns texts into token ids, clipped to MaxSeqTokens as the model clips. It
// refuses before tokenizing when the queue has no room for the texts, and stops when the
// deadline passes: tokenizing is the costly part of a texts request.
func (s *Server) tokenize(texts []string, deadline time.Time) ([][]int32, error) {
	if s.cfg.Tokenizer == nil {
		return nil, errors.New(`this service has no tokenizer: send "token_ids"`)
	}
	if len(texts) == 0 {
		return nil, errors.New("no texts: send at least one")
	}
	if len(texts) > s.cfg.MaxRequestSeqs {
		return nil, fmt.Errorf("%w: %d texts in one request; the limit is %d", wire.ErrLimit, len(texts), s.cfg.MaxRequestSeqs)
	}
	for i, t := range texts {
		if len(t) > s.cfg.MaxTextBytes {
			return nil, fmt.Errorf("%w: texts[%d] is %d bytes; the limit is %d", wire.ErrLimit, i, len(t), s.cfg.MaxTextBytes)
		}
	}
	if s.b.depth()+len(texts) > s.cfg.Batch.MaxQueueSeqs {
		return nil, errQueueFull
	}
	seqs := make([][]int32, len(texts))
	for i, t := range texts {
		if !time.Now().Before(deadline) {
			return nil, errRunExpired
		}
		if len(t) > s.cfg.MaxTextBytes {
			return nil, fmt.Errorf("%w: texts[%d] is %d bytes; the limit is %d", wire.ErrLimit, i, len(t), s.cfg.MaxTextBytes)
		}
		if strings.TrimSpace(t) == "" {
			return nil, fmt.Errorf("texts[%d] is empty", i)
		}
		ids := s.cfg.Tokenizer.Encode(t)
		if len(ids) == 0 {
			return nil, fmt.Errorf("texts[%d] has no tokens", i)
		}
		seqs[i] = ids[:min(len(ids), s.cfg.MaxSeqTokens)]
	}
	return seqs, wire.ValidateTokens(seqs, s.limits)
}

func invalidUTF8At(b []byte) int {
	for i := 0; i < len(b); {
		r, n := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && n <= 1 {
			return i
		}
		i += n
	}
	return -1
}

// negotiate picks the response type from an Accept header: the acceptable type of highest
// q, the earliest among equals; JSON when the header is absent or says */*.
func negotiate(accept []byte) (string, bool) {
	if len(bytes.TrimSpace(accept)) == 0 {
		return wire.ContentTypeJSON, true
	}
	best, bestQ := "", 0.0
	for _, part := range strings.Split(string(accept), ",") {
		fields := strings.Split(part, ";")
		mt := strings.ToLower(strings.TrimSpace(fields[0]))
		q := 1.0
		for _, p := range fields[1:] {
			if k, v, ok := strings.Cut(strings.TrimSpace(p), "="); ok && strings.EqualFold(k, "q") {
				if f, err := strconv.ParseFloat(v, 64); err == nil {
					q = f
				}
			}
		}
		var t string
		switch mt {
		case wire.ContentTypeJSON, "*/*", "application/*":
			t = wire.ContentTypeJSON
		case wire.ContentTypeF32, wire.ContentTypeF16:
			t = mt
		default:
			continue
		}
		if q > bestQ {
			best, bestQ = t, q
		}
	}
	return best, best != ""
}

// httpError answers requests fasthttp could not read (too large, malformed), with a fixed
// message: fasthttp's own errors quote the request's bytes, Authorization included.
func (s *Server) httpError(ctx *fasthttp.RequestCtx, err error) {
	var small *fasthttp.ErrSmallBuffer
	var netErr net.Error
	switch {
	case errors.Is(err, fasthttp.ErrBodyTooLarge):
		writeError(ctx, fasthttp.StatusRequestEntityTooLarge, fmt.Sprintf("request body exceeds the limit of %d bytes", s.cfg.MaxBodyBytes))
	case errors.As(err, &small):
		writeError(ctx, fasthttp.StatusRequestHeaderFieldsTooLarge, fmt.Sprintf("request line and headers exceed the limit of %d bytes", s.http.ReadBufferSize))
	case errors.As(err, &netErr) && netErr.Timeout():
		writeError(ctx, fasthttp.StatusRequestTimeout, "request was not received in time")
	default:
		writeError(ctx, fasthttp.StatusBadRequest, "malformed HTTP request")
	}
	s.log.Debug("unreadable HTTP request", "err", redact(err))
}

// redact returns err's message up to the first quoted part: fasthttp quotes the bytes it
// could not parse, which may hold headers, tokens or query text.
func redact(err error) string {
	msg := err.Error()
	if i := strings.IndexAny(msg, "\"'`"); i >= 0 {
		msg = strings.TrimSpace(msg[:i]) + " [request bytes withheld]"
	}
	if i := strings.Index(msg, "contents:"); i >= 0 {
		msg = strings.TrimSpace(msg[:i]) + " [request bytes withheld]"
	}
	return msg
}

func writeError(ctx *fasthttp.RequestCtx, status int, msg string) {
	body, _ := json.Marshal(wire.JSONError{Error: msg})
	ctx.SetStatusCode(status)
	ctx.SetContentType(wire.ContentTypeJSON)
	ctx.SetBody(append(body, '\n'))
}

// fasthttpLogger sends fasthttp's own messages (mostly broken connections) to slog at debug
// level: the client already got its answer.
type fasthttpLogger struct{ log *slog.Logger }

func (l fasthttpLogger) Printf(format string, args ...any) {
	for i, a := range args {
		if err, ok := a.(error); ok {
			args[i] = redact(err)
		}
	}
	l.log.Debug("fasthttp: " + fmt.Sprintf(format, args...))
}
