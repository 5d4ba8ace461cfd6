package edge

import (
	"bytes"
	"context"
	"crypto/subtle"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
)

//go:embed static/index.html
var indexPage []byte

// maxRequestBytes is fasthttp's hard limit on a request's header and body. It is larger
// than the API's own limits (MaxQueryBytes, MaxBodyBytes) so that an oversized query is
// read whole and answered with a clear 413 instead of a dropped connection, and than the
// largest peer request (MaxQueries vectors of 2.7 KB in base64, plus their text).
const maxRequestBytes = 256 << 10

// Server is one edge node. Create it with New, run it with Serve or ListenAndServe, stop it
// with Shutdown.
type Server struct {
	cfg   Config
	val   validator
	met   *metrics
	lim   *clientLimiter
	peers *peerSet
	srv   *fasthttp.Server
	log   *slog.Logger

	cur      atomic.Pointer[shards]
	reloadMu sync.Mutex
	draining atomic.Bool
	closed   atomic.Bool
	done     chan struct{} // closed by Shutdown: stops background reloads
}

// shards is one loaded Searcher (and tokenizer, when Config.OpenTokenizer loads it) with a
// count of the requests using it, so a reload can close the old ones only when their last
// request is done.
type shards struct {
	s       Searcher
	tok     Tokenizer
	ownTok  bool // tok came from OpenTokenizer: close it with the shards
	refs    atomic.Int64
	retired atomic.Bool
	// unreadable: a search found a file of these shards changed on disk (see
	// ErrShardsUnreadable); set once, when the reloading starts.
	unreadable atomic.Bool
	once       sync.Once
	log        *slog.Logger
}

func (sh *shards) release() {
	if sh.refs.Add(-1) == 0 && sh.retired.Load() {
		sh.close()
	}
}

func (sh *shards) retire() {
	sh.retired.Store(true)
	if sh.refs.Load() == 0 {
		sh.close()
	}
}

func (sh *shards) close() {
	sh.once.Do(func() {
		if err := sh.s.Close(); err != nil {
			sh.log.Warn("closing old shards", "index_version", sh.s.IndexVersion(), "err", err)
		}
		if c, ok := sh.tok.(interface{ Close(context.Context) error }); ok && sh.ownTok {
			if err := c.Close(context.Background()); err != nil {
				sh.log.Warn("closing old tokenizer", "err", err)
			}
		}
	})
}

// New builds an edge node and loads its shards with cfg.Open.
func New(cfg Config) (*Server, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	met, err := newMetrics(cfg.Registry)
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, met: met, log: cfg.Logger, done: make(chan struct{})}
	s.val = validator{
		maxQueryBytes: cfg.MaxQueryBytes, maxQueries: cfg.MaxQueries, maxBodyBytes: cfg.MaxBodyBytes,
		defaultK: cfg.DefaultK, maxK: cfg.MaxK, defaultMode: cfg.DefaultMode,
	}
	if cfg.RateLimit > 0 {
		s.lim = newClientLimiter(cfg.RateLimit, cfg.RateBurst, cfg.MaxClients)
	}
	if s.peers, err = newPeerSet(cfg.Peers, cfg.PeerToken, cfg.PeerTimeout, s.met); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	sh, err := s.open(ctx)
	if err != nil {
		return nil, err
	}
	s.cur.Store(sh)
	s.met.ready.Set(1)
	s.srv = &fasthttp.Server{
		Handler:            s.handle,
		ErrorHandler:       s.transportError,
		Name:               "podsearch-edge",
		ReadTimeout:        cfg.ReadTimeout,
		WriteTimeout:       cfg.WriteTimeout,
		IdleTimeout:        cfg.IdleTimeout,
		ReadBufferSize:     maxRequestBytes,
		MaxRequestBodySize: maxRequestBytes,
		ReduceMemoryUsage:  true,
		CloseOnShutdown:    true,
		// fasthttp's parse errors otherwise quote the raw request (Authorization and the
		// query text included) into logs and the error passed to transportError.
		SecureErrorLogMessage: true,
		Logger:                slogPrinter{s.log},
	}
	return s, nil
}

// open loads the shards (and the tokenizer, with OpenTokenizer) and checks the shards were
// built with the model the encoder serves.
func (s *Server) open(ctx context.Context) (*shards, error) {
	sh := &shards{tok: s.cfg.Tokenizer, log: s.log}
	if s.cfg.OpenTokenizer != nil {
		tok, err := s.cfg.OpenTokenizer(ctx)
		if err != nil {
			return nil, fmt.Errorf("edge: loading the tokenizer: %w", err)
		}
		sh.tok, sh.ownTok = tok, true
	}
	sr, err := s.openSearcher(ctx)
	if err != nil {
		if c, ok := sh.tok.(interface{ Close(context.Context) error }); ok && sh.ownTok {
			_ = c.Close(ctx)
		}
		return nil, err
	}
	sh.s = sr
	return sh, nil
}

func (s *Server) openSearcher(ctx context.Context) (Searcher, error) {
	sr, err := s.cfg.Open(ctx)
	if err != nil {
		return nil, fmt.Errorf("edge: loading shards: %w", err)
	}
	if s.cfg.Embedder != nil {
		want, have := s.cfg.Embedder.Fingerprint(), sr.Fingerprint()
		if want != "" && have != "" && want != have {
			sr.Close()
			return nil, fmt.Errorf("edge: shards %s were built with model %s but the encoder serves %s",
				sr.IndexVersion(), have, want)
		}
	}
	return sr, nil
}

// Serve accepts connections on ln until Shutdown.
func (s *Server) Serve(ln net.Listener) error {
	s.log.Info("edge serving", "addr", ln.Addr().String(), "index_version", s.IndexVersion(),
		"peers", len(s.peers.urls), "mode", s.cfg.DefaultMode)
	return s.srv.Serve(ln)
}

// ListenAndServe listens on the TCP address addr and serves until Shutdown.
func (s *Server) ListenAndServe(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	return s.Serve(ln)
}

// Shutdown stops the node gracefully: /readyz fails at once, requests keep being served
// for Config.DrainDelay, then the listener closes, in-flight requests finish (until ctx
// ends) and the shards are released.
func (s *Server) Shutdown(ctx context.Context) error {
	if s.closed.Swap(true) {
		return nil
	}
	s.draining.Store(true)
	close(s.done)
	s.met.ready.Set(0)
	if s.cfg.DrainDelay > 0 {
		select {
		case <-time.After(s.cfg.DrainDelay):
		case <-ctx.Done():
		}
	}
	err := s.srv.ShutdownWithContext(ctx)
	s.peers.client.CloseIdleConnections()
	if sh := s.cur.Load(); sh != nil {
		sh.retire()
	}
	s.log.Info("edge stopped", "err", err)
	return err
}

// IndexVersion is the version of the shards being served.
func (s *Server) IndexVersion() string { return s.cur.Load().s.IndexVersion() }

// Reload loads the shards again with Config.Open (and the tokenizer with
// Config.OpenTokenizer) and switches to them atomically; requests already running finish on
// the old ones, which are closed after the last one. On error the old ones stay in service.
func (s *Server) Reload(ctx context.Context) (previous, current string, err error) {
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	old := s.cur.Load()
	previous = old.s.IndexVersion()
	sh, err := s.open(ctx)
	if err != nil {
		s.met.reloads.WithLabelValues("error").Inc()
		s.log.Error("reload failed; still serving the old shards", "index_version", previous, "err", err)
		return previous, previous, err
	}
	s.cur.Store(sh)
	old.retire()
	s.met.reloads.WithLabelValues("ok").Inc()
	s.log.Info("shards reloaded", "previous", previous, "index_version", sh.s.IndexVersion(), "tokenizer_reloaded", sh.ownTok)
	return previous, sh.s.IndexVersion(), nil
}

// acquire returns the current shards, counted as in use until release.
func (s *Server) acquire() *shards {
	for {
		sh := s.cur.Load()
		sh.refs.Add(1)
		if s.cur.Load() == sh {
			return sh
		}
		sh.release()
	}
}

// handle routes a request and writes its access log line.
func (s *Server) handle(ctx *fasthttp.RequestCtx) {
	start := time.Now()
	route := s.route(ctx)
	code := ctx.Response.StatusCode()
	dur := time.Since(start)
	s.met.requests.WithLabelValues(route, strconv.Itoa(code)).Inc()
	s.met.duration.WithLabelValues(route).Observe(dur.Seconds())
	level := slog.LevelInfo
	if route == "healthz" || route == "readyz" || route == "metrics" {
		level = slog.LevelDebug
	}
	s.log.Log(context.Background(), level, "access",
		"method", string(ctx.Method()), "path", string(ctx.Path()), "route", route, "status", code,
		"ms", float64(dur.Microseconds())/1000, "bytes", len(ctx.Response.Body()),
		"client", s.clientKey(ctx))
}

// route dispatches by path and method and returns the route name for logs and metrics.
func (s *Server) route(ctx *fasthttp.RequestCtx) string {
	path := string(ctx.Path())
	method := string(ctx.Method())
	allow := func(methods ...string) bool {
		for _, m := range methods {
			if m == method {
				return true
			}
		}
		ctx.Response.Header.Set("Allow", strings.Join(methods, ", "))
		s.writeError(ctx, &apiError{fasthttp.StatusMethodNotAllowed,
			fmt.Sprintf("%s is not allowed on %s (use %s)", truncate(method, 16), path, strings.Join(methods, " or "))})
		return false
	}
	switch path {
	case "/v1/search":
		if allow(fasthttp.MethodGet, fasthttp.MethodPost) {
			s.handleSearch(ctx)
		}
		return "search"
	case shardSearchPath:
		if allow(fasthttp.MethodPost) {
			s.handleShardSearch(ctx)
		}
		return "shard-search"
	case "/":
		if allow(fasthttp.MethodGet, fasthttp.MethodHead) {
			ctx.SetContentType("text/html; charset=utf-8")
			ctx.SetBody(indexPage)
		}
		return "page"
	case "/healthz":
		if allow(fasthttp.MethodGet, fasthttp.MethodHead) {
			s.writeJSON(ctx, fasthttp.StatusOK, map[string]string{"status": "ok"})
		}
		return "healthz"
	case "/readyz":
		if allow(fasthttp.MethodGet, fasthttp.MethodHead) {
			s.handleReady(ctx)
		}
		return "readyz"
	case "/metrics":
		if allow(fasthttp.MethodGet) {
			s.met.handler(ctx)
		}
		return "metrics"
	case "/admin/reload":
		if allow(fasthttp.MethodPost) {
			s.handleReload(ctx)
		}
		return "reload"
	}
	s.writeError(ctx, &apiError{fasthttp.StatusNotFound, fmt.Sprintf("no such endpoint %q", truncate(path, 64))})
	return "other"
}

func (s *Server) handleReady(ctx *fasthttp.RequestCtx) {
	if s.draining.Load() {
		s.writeJSON(ctx, fasthttp.StatusServiceUnavailable, map[string]string{"status": "draining"})
		return
	}
	if s.cur.Load().unreadable.Load() {
		s.writeJSON(ctx, fasthttp.StatusServiceUnavailable, map[string]string{"status": "shards unreadable; reloading"})
		return
	}
	s.writeJSON(ctx, fasthttp.StatusOK, map[string]string{"status": "ready", "index_version": s.IndexVersion()})
}

func (s *Server) handleReload(ctx *fasthttp.RequestCtx) {
	if s.cfg.AdminToken == "" {
		s.writeError(ctx, &apiError{fasthttp.StatusForbidden, "reload is disabled: the node has no admin token configured"})
		return
	}
	if !bearerOK(ctx, s.cfg.AdminToken) {
		ctx.Response.Header.Set("WWW-Authenticate", `Bearer realm="podsearch-admin"`)
		s.writeError(ctx, &apiError{fasthttp.StatusUnauthorized, "missing or wrong admin bearer token"})
		return
	}
	rctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	prev, cur, err := s.Reload(rctx)
	if err != nil {
		// The full error is in the log; the answer names files without their folders.
		s.writeError(ctx, &apiError{fasthttp.StatusInternalServerError,
			fmt.Sprintf("reload failed, still serving %s: %s", prev, redactPaths(err.Error()))})
		return
	}
	s.writeJSON(ctx, fasthttp.StatusOK, map[string]string{"previous": prev, "index_version": cur})
}

// bearerOK checks the Authorization header against token in constant time.
func bearerOK(ctx *fasthttp.RequestCtx, token string) bool {
	h := ctx.Request.Header.Peek("Authorization")
	const prefix = "Bearer "
	if len(h) < len(prefix) || !strings.EqualFold(string(h[:len(prefix)]), prefix) {
		return false
	}
	return subtle.ConstantTimeCompare(h[len(prefix):], []byte(token)) == 1
}

// clientKey identifies the client for rate limiting and logs.
func (s *Server) clientKey(ctx *fasthttp.RequestCtx) string {
	if s.cfg.TrustForwardedFor {
		if xff := ctx.Request.Header.Peek("X-Forwarded-For"); len(xff) > 0 {
			first, _, _ := strings.Cut(string(xff), ",")
			if first = strings.TrimSpace(first); first != "" {
				return truncate(first, 64)
			}
		}
	}
	return ctx.RemoteIP().String()
}

func (s *Server) writeJSON(ctx *fasthttp.RequestCtx, status int, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // titles keep their "&" and "<" readable; the page uses textContent
	err := enc.Encode(v)
	b := buf.Bytes()
	if err != nil {
		s.log.Error("encoding a response", "err", err)
		status, b = fasthttp.StatusInternalServerError, []byte(`{"error":"internal error encoding the response"}`)
	}
	ctx.SetStatusCode(status)
	ctx.SetContentType("application/json")
	ctx.SetBody(b)
}

func (s *Server) writeError(ctx *fasthttp.RequestCtx, e *apiError) {
	s.writeJSON(ctx, e.status, map[string]string{"error": e.msg})
}

// transportError answers requests fasthttp could not parse, with a 4xx and a clear message.
func (s *Server) transportError(ctx *fasthttp.RequestCtx, err error) {
	var small *fasthttp.ErrSmallBuffer
	var netErr net.Error
	switch {
	case errors.Is(err, fasthttp.ErrBodyTooLarge):
		s.writeError(ctx, tooLarge("request body is larger than %d bytes", maxRequestBytes))
	case errors.As(err, &small):
		s.writeError(ctx, &apiError{fasthttp.StatusRequestHeaderFieldsTooLarge,
			fmt.Sprintf("request line and headers are larger than %d bytes", maxRequestBytes)})
	case errors.As(err, &netErr) && netErr.Timeout():
		s.writeError(ctx, &apiError{fasthttp.StatusRequestTimeout, "request was not received in time"})
	default:
		// Never the parser's message: it can quote the request (headers, query text).
		s.writeError(ctx, badRequest("malformed HTTP request: %s", malformedWhat(err)))
	}
}

// malformedWhat names the part of a request fasthttp could not parse, without quoting it.
func malformedWhat(err error) string {
	msg := err.Error()
	switch {
	case strings.Contains(msg, "Content-Length"):
		return "bad Content-Length header"
	case strings.Contains(msg, "request headers"), strings.Contains(msg, "header"):
		return "bad request line or headers"
	case strings.Contains(msg, "body"), strings.Contains(msg, "chunk"):
		return "bad body framing"
	}
	return "cannot parse the request"
}

// absPath matches absolute file paths in error messages.
var absPath = regexp.MustCompile(`(^|[\s"'(=])/[^\s:"',;()]*/([^\s:"',;()/]+)`)

// redactPaths replaces the absolute paths in msg by their last element, so answers do not
// reveal the node's folders.
func redactPaths(msg string) string { return absPath.ReplaceAllString(msg, "$1$2") }

// slogPrinter routes fasthttp's own log lines to slog. A connection that failed because
// of what the client sent is the client's problem, logged at Info; anything a line
// quotes of the request is cut off (SecureErrorLogMessage already leaves it out).
type slogPrinter struct{ l *slog.Logger }

func (p slogPrinter) Printf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if i := strings.Index(msg, ", contents:"); i >= 0 {
		msg = msg[:i] + " (request not logged)"
	}
	level := slog.LevelWarn
	if strings.HasPrefix(format, "error when serving connection") {
		level = slog.LevelInfo
	}
	p.l.Log(context.Background(), level, "fasthttp: "+truncate(msg, 300))
}
