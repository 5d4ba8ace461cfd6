package edge

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// BenchmarkSearchHTTP measures one search request over loopback HTTP end to end (parse,
// validate, tokenize, embed as a cache hit would, search, snippets, JSON), sequentially, on
// the fixture's real episodes through the exact in-memory searcher and through a real
// core/index folder.
func BenchmarkSearchHTTP(b *testing.B) {
	fx := loadFixture(b)
	emb := &goldenEmbedder{fx: fx}
	dir := buildIndexTB(b, fx, fx.episodes, 1)
	var queries []goldenLine // short queries, as users type them
	for _, q := range fx.queries {
		if len(q.Text) <= 200 && len(q.IDs) <= 128 {
			queries = append(queries, q)
		}
	}
	for _, bc := range []struct {
		name string
		open Opener
	}{
		{"memory", func(context.Context) (Searcher, error) {
			return NewMemorySearcher("m", goldenFingerprint, fx.episodes), nil
		}},
		{"index", IndexOpener(IndexOptions{Dir: dir, Fingerprint: emb.Fingerprint})},
	} {
		srv, err := New(Config{Open: bc.open, Tokenizer: goldenTok(fx), Embedder: emb, Logger: quietLogger()})
		if err != nil {
			b.Fatal(err)
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		go srv.Serve(ln)
		base := "http://" + ln.Addr().String()
		for _, mode := range []string{"dense", "keyword", "hybrid"} {
			b.Run(bc.name+"/"+mode, func(b *testing.B) {
				req := fasthttp.AcquireRequest()
				resp := fasthttp.AcquireResponse()
				i := 0
				for b.Loop() {
					q := queries[i%len(queries)]
					i++
					req.SetRequestURI(searchURL(base, "q", q.Text, "k", "10", "mode", mode))
					if err := client.Do(req, resp); err != nil || resp.StatusCode() != 200 {
						b.Fatalf("%v %d %s", err, resp.StatusCode(), resp.Body())
					}
				}
			})
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		srv.Shutdown(ctx)
		cancel()
	}
}
