package gpuencoder

import (
	"encoding/json"
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/podsearch/podsearch/core/encoder"
	"github.com/podsearch/podsearch/gpu-encoder/standin"
	"github.com/podsearch/podsearch/gpu-encoder/wire"
)

// FuzzEmbedHandler feeds arbitrary bodies, content types and Accept headers to the embed
// handler (no network): every answer must be a 200 with vectors or a 4xx with a JSON error
// message, never a panic or a 5xx.
func FuzzEmbedHandler(f *testing.F) {
	s, err := New(Config{Backends: []encoder.Embedder{&standin.Embedder{}}, Tokenizer: runeTokenizer{}, MaxRequestSeqs: 16, MaxTextBytes: 256})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(s.b.close)
	f.Add(wire.ContentTypeJSON, "", []byte(`{"token_ids": [[1, 2, 3]]}`))
	f.Add(wire.ContentTypeJSON, wire.ContentTypeF16, []byte(`{"texts": ["hello world", "caf\u00e9"]}`))
	f.Add(wire.ContentTypeJSON, "", []byte(`{"token_ids": [[1.5]]}`))
	f.Add(wire.ContentTypeJSON, "", []byte("{\"texts\": [\"\xff\"]}"))
	f.Add(wire.ContentTypeTokens, wire.ContentTypeF32, wire.EncodeTokens(nil, [][]int32{{5, 6}, {7}}))
	f.Add(wire.ContentTypeTokens, "*/*", []byte("PSTK\x01\x02\x00\x00\x01\x00\x00\x00"))
	f.Add("text/plain", "text/html", []byte(`[]`))
	f.Fuzz(func(t *testing.T, ctype, accept string, body []byte) {
		var ctx fasthttp.RequestCtx
		ctx.Request.Header.SetMethod(fasthttp.MethodPost)
		ctx.Request.SetRequestURI(wire.EmbedPath)
		ctx.Request.Header.SetContentType(ctype)
		ctx.Request.Header.Set("Accept", accept)
		ctx.Request.SetBody(body)
		s.Handle(&ctx)
		code := ctx.Response.StatusCode()
		switch {
		case code == fasthttp.StatusOK:
			if len(ctx.Response.Body()) == 0 {
				t.Fatal("empty 200")
			}
		case code >= 400 && code < 500:
			var e wire.JSONError
			if err := json.Unmarshal(ctx.Response.Body(), &e); err != nil || e.Error == "" {
				t.Fatalf("%d without a JSON message: %q", code, ctx.Response.Body())
			}
		default:
			t.Fatalf("status %d: %s", code, ctx.Response.Body())
		}
	})
}
