package e2e

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/podsearch/podsearch/core/assets"
	"github.com/podsearch/podsearch/core/encoder"
	"github.com/podsearch/podsearch/core/index"
	"github.com/podsearch/podsearch/core/tokenizer"
	"github.com/podsearch/podsearch/edge"
	"github.com/podsearch/podsearch/edge/node"
	gpuencoder "github.com/podsearch/podsearch/gpu-encoder"
)

// Options configures a Cluster.
type Options struct {
	// IndexDir is an index folder of at least 2 shards; edge i serves the shards j with
	// j % 2 == i and fans out to the other edge. Required.
	IndexDir string
	// Descriptions feed result snippets (optional; see Descriptions).
	Descriptions map[string]string
	// Encoders is the number of encoder services (default 2), each with one ONNX Runtime
	// session of the real model on one thread.
	Encoders int
	// RedisURL is the shared cache tier; empty runs each edge with its in-process tier only.
	RedisURL string
	// NoCache makes the edges embed every query through the encoder pool (the baseline).
	NoCache bool
	// WasmTokenizer tokenizes in the wasm guest pool (as serve-edge does by default) instead
	// of natively.
	WasmTokenizer bool
	// WasmScan scans the shards in the wasm scan guest (as serve-edge does by default)
	// instead of natively.
	WasmScan bool
	// AdminToken authenticates POST /admin/reload; empty makes a random one.
	AdminToken string
	// PeerToken guards /v1/shard-search between the edges; empty makes a random one.
	PeerToken string
	// EncoderToken is the bearer token the encoders require on /v1/embed (the edges' pools
	// send it); empty makes a random one.
	EncoderToken string
	// PeerTimeout and RequestTimeout are the edges' deadlines (edge defaults when zero).
	PeerTimeout, RequestTimeout time.Duration
	// Logger receives the components' logs (default: warnings and errors to stderr).
	Logger *slog.Logger
}

// Cluster is the running system: encoder services and two edges on 127.0.0.1.
type Cluster struct {
	// Edges are the edges' base URLs (http://127.0.0.1:PORT).
	Edges []string
	// AdminToken is the edges' reload token.
	AdminToken string
	// PeerToken is the token the edges require on /v1/shard-search.
	PeerToken string
	// EncoderToken is the token the encoders require on /v1/embed.
	EncoderToken string
	// Encoders are the encoder services' base URLs (http://127.0.0.1:PORT).
	Encoders []string
	// Fingerprint is the model the index and encoders serve.
	Fingerprint string

	encoders []*encoderNode
	edges    []*edgeNode
	log      *slog.Logger
	noCache  bool
	indexDir string
}

type encoderNode struct {
	addr   string
	sess   *encoder.Session
	srv    *gpuencoder.Server
	ln     *killableListener
	served chan error
	mu     sync.Mutex
	killed bool
}

type edgeNode struct {
	node   *node.Node
	srv    *edge.Server // node.Server
	ln     net.Listener
	served chan error
}

// Start builds and starts the cluster; Close stops it. On error, whatever started is
// stopped.
func Start(ctx context.Context, opts Options) (c *Cluster, err error) {
	if opts.Encoders <= 0 {
		opts.Encoders = 2
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	for _, tok := range []*string{&opts.AdminToken, &opts.PeerToken, &opts.EncoderToken} {
		if *tok == "" {
			b := make([]byte, 16)
			_, _ = rand.Read(b)
			*tok = hex.EncodeToString(b)
		}
	}
	nShards, err := shardCount(opts.IndexDir)
	if err != nil {
		return nil, err
	}
	if nShards < 2 {
		return nil, fmt.Errorf("index %s has %d shard; the cluster needs at least 2 (one per edge)", opts.IndexDir, nShards)
	}
	uni, err := tokenizer.LoadFile(assets.VocabPath())
	if err != nil {
		return nil, fmt.Errorf("%w: %v", encoder.ErrNotSetUp, err)
	}
	c = &Cluster{AdminToken: opts.AdminToken, PeerToken: opts.PeerToken, EncoderToken: opts.EncoderToken, log: opts.Logger, noCache: opts.NoCache, indexDir: opts.IndexDir}
	defer func() {
		if err != nil {
			c.Close()
			c = nil
		}
	}()

	var encAddrs []string
	for range opts.Encoders {
		en, err := startEncoder(uni, opts.EncoderToken, opts.Logger)
		if err != nil {
			return c, err
		}
		c.encoders = append(c.encoders, en)
		encAddrs = append(encAddrs, en.addr)
		c.Encoders = append(c.Encoders, "http://"+en.addr)
	}
	c.Fingerprint = c.encoders[0].sess.Fingerprint()

	lns := make([]net.Listener, 2)
	for i := range lns {
		if lns[i], err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			for _, l := range lns[:i] {
				l.Close()
			}
			return c, err
		}
		c.Edges = append(c.Edges, "http://"+lns[i].Addr().String())
	}
	for i := range 2 {
		n := &edgeNode{ln: lns[i], served: make(chan error, 1)}
		c.edges = append(c.edges, n)
		var shards []int
		for s := i; s < nShards; s += 2 {
			shards = append(shards, s)
		}
		var peers []string
		for j, u := range c.Edges {
			if j != i {
				peers = append(peers, u)
			}
		}
		nopts := node.Options{
			Index: edge.IndexOptions{Dir: opts.IndexDir, Shards: shards, Descriptions: opts.Descriptions},
			Edge: edge.Config{Peers: peers, PeerToken: opts.PeerToken, AdminToken: opts.AdminToken,
				PeerTimeout: opts.PeerTimeout, RequestTimeout: opts.RequestTimeout,
				Registry: prometheus.NewRegistry(), Logger: opts.Logger},
			Encoders: encAddrs, EncoderToken: opts.EncoderToken, EncoderHealthInterval: 250 * time.Millisecond,
			NoCache: opts.NoCache, RedisURL: opts.RedisURL, CacheBreakerCooldown: time.Second,
			Tokenizer: node.TokenizerNative, TokenizerInstances: 2, StaticTokenizer: true,
		}
		if opts.WasmTokenizer {
			nopts.Tokenizer = node.TokenizerWasm
		}
		if opts.WasmScan {
			if nopts.Index.Backend, err = node.ScanBackend(node.ScanWasm, 2); err != nil {
				return c, err
			}
		}
		if n.node, err = node.New(ctx, nopts); err != nil {
			return c, err
		}
		n.srv = n.node.Server
		go func() { n.served <- n.node.Serve(n.ln) }()
	}
	for _, u := range c.Edges {
		if err := waitReady(ctx, u+"/readyz"); err != nil {
			return c, err
		}
	}
	return c, nil
}

func startEncoder(uni *tokenizer.Unigram, token string, log *slog.Logger) (*encoderNode, error) {
	sess, err := encoder.Open(encoder.Options{IntraOpThreads: 1})
	if err != nil {
		return nil, err
	}
	srv, err := gpuencoder.New(gpuencoder.Config{
		Backends:  []encoder.Embedder{sess},
		Tokenizer: uni,
		Batch:     gpuencoder.BatchConfig{MaxBatchTokens: 256},
		Registry:  prometheus.NewRegistry(),
		Logger:    log,
		Token:     token,
	})
	if err != nil {
		sess.Close()
		return nil, err
	}
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		sess.Close()
		return nil, err
	}
	ln := &killableListener{Listener: inner, conns: map[net.Conn]struct{}{}}
	en := &encoderNode{addr: inner.Addr().String(), sess: sess, srv: srv, ln: ln, served: make(chan error, 1)}
	go func() { en.served <- srv.Serve(ln) }()
	return en, nil
}

// KillEncoder crashes encoder i as seen from its clients: its listener and every open
// connection are closed at once (requests in flight on it fail), then its batch workers
// stop.
func (c *Cluster) KillEncoder(i int) {
	en := c.encoders[i]
	en.mu.Lock()
	defer en.mu.Unlock()
	if en.killed {
		return
	}
	en.killed = true
	en.ln.kill()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = en.srv.Shutdown(ctx)
}

// Reload asks edge i to reload its shards (POST /admin/reload with the admin token) and
// returns the new index version.
func (c *Cluster) Reload(ctx context.Context, i int) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.Edges[i]+"/admin/reload", nil)
	if err != nil {
		return "", err
	}
	req.Header.Set("Authorization", "Bearer "+c.AdminToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("reload: %s: %s", resp.Status, strings.TrimSpace(string(body)))
	}
	var a struct {
		IndexVersion string `json:"index_version"`
	}
	if err := json.Unmarshal(body, &a); err != nil {
		return "", fmt.Errorf("reload answer: %w", err)
	}
	return a.IndexVersion, nil
}

// DeleteEpisodes tombstones ids in the index folder (as `podsearch index` updates do);
// the edges see it at their next reload.
func (c *Cluster) DeleteEpisodes(ids []string) error {
	ix, err := index.Open(c.indexDir, c.Fingerprint, index.OpenOptions{})
	if err != nil {
		return err
	}
	if _, err := ix.Delete(ids); err != nil {
		ix.Close()
		return err
	}
	return ix.Close()
}

// Search sends one GET /v1/search to edge i and returns the result ids.
func (c *Cluster) Search(ctx context.Context, i int, q string, k int) ([]string, error) {
	u := c.Edges[i] + "/v1/search?" + url.Values{"q": {q}, "k": {strconv.Itoa(k)}}.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("search %q: %s: %s", q, resp.Status, strings.TrimSpace(string(body)))
	}
	var a answer
	if err := json.Unmarshal(body, &a); err != nil {
		return nil, err
	}
	ids := make([]string, len(a.Results))
	for j, h := range a.Results {
		ids[j] = h.ID
	}
	return ids, nil
}

// Close stops the edges, then the encoders, and releases everything.
func (c *Cluster) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, n := range c.edges {
		if n.node != nil {
			_ = n.node.Shutdown(ctx)
			<-n.served
		} else {
			n.ln.Close()
		}
	}
	for i, en := range c.encoders {
		c.KillEncoder(i)
		<-en.served
		_ = en.sess.Close()
	}
	c.edges, c.encoders = nil, nil
}

// shardCount reads the number of shards from an index manifest.
func shardCount(dir string) (int, error) {
	b, err := os.ReadFile(filepath.Join(dir, index.ManifestName))
	if err != nil {
		return 0, fmt.Errorf("index folder %s: %w (build one with `podsearch index --shards 2`)", dir, err)
	}
	var man struct {
		Shards int `json:"shards"`
	}
	if err := json.Unmarshal(b, &man); err != nil {
		return 0, fmt.Errorf("index %s: bad manifest: %w", dir, err)
	}
	return man.Shards, nil
}

// waitReady polls url until it answers 200 (at most 60 s).
func waitReady(ctx context.Context, url string) error {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	client := &http.Client{Timeout: time.Second}
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if resp, err := client.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s not ready: %w", url, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// killableListener tracks accepted connections so that kill can drop them all, as a
// crashed process would.
type killableListener struct {
	net.Listener
	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	killed bool
}

func (l *killableListener) Accept() (net.Conn, error) {
	conn, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.killed {
		conn.Close()
		return nil, net.ErrClosed
	}
	l.conns[conn] = struct{}{}
	return &trackedConn{Conn: conn, l: l}, nil
}

func (l *killableListener) kill() {
	l.mu.Lock()
	l.killed = true
	conns := l.conns
	l.conns = map[net.Conn]struct{}{}
	l.mu.Unlock()
	_ = l.Listener.Close()
	for conn := range conns {
		if tc, ok := conn.(*net.TCPConn); ok {
			_ = tc.SetLinger(0) // RST, as the kernel does for a killed process
		}
		conn.Close()
	}
}

type trackedConn struct {
	net.Conn
	l    *killableListener
	once sync.Once
}

func (c *trackedConn) Close() error {
	c.once.Do(func() {
		c.l.mu.Lock()
		delete(c.l.conns, c.Conn)
		c.l.mu.Unlock()
	})
	return c.Conn.Close()
}
