package gpuencoder

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/podsearch/podsearch/gpu-encoder/wire"
)

// syncBuffer is a bytes.Buffer safe for a logger and a test to share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// rawRequest writes req on a fresh connection to addr (host:port) and reads one answer.
func rawRequest(t *testing.T, addr, req string) (*http.Response, string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// TestNullTokenRefused: encoding/json leaves a JSON null in an []int32 as 0, a real token;
// the service refuses it.
func TestNullTokenRefused(t *testing.T) {
	_, url := startServer(t, standinConfig())
	for _, body := range []string{
		`{"token_ids":[[null]]}`,
		`{"token_ids":[[5, null, 7]]}`,
		`{"token_ids":[null]}`,
		`{"token_ids":[[1e2]]}`,
		`{"token_ids":[[true]]}`,
		`{"token_ids":[[[1]]]}`,
		`{"token_ids":[["1,2"]]}`,
		`{"token_ids":[[2147483648]]}`,
	} {
		r := post(t, url, wire.ContentTypeJSON, []byte(body), nil)
		if r.status != 400 || !strings.Contains(r.errorText(t), "wrong dtype: token_ids must be arrays of integers") {
			t.Errorf("%s: status %d: %s", body, r.status, r.body)
		}
	}
	// What the decoder still takes: whitespace, negative zero and the full id range.
	decodeReply(t, post(t, url, wire.ContentTypeJSON, []byte(`{"token_ids":[[ 1 ,2,-0, 8001 ], [0]]}`), nil))
}

// TestErrorsNameNoGoTypes: JSON errors speak of the protocol's fields, never of Go types.
func TestErrorsNameNoGoTypes(t *testing.T) {
	_, url := startServer(t, standinConfig())
	for _, body := range []string{`[1, 2]`, `"hello"`, `42`, `{"token_ids": {"a": 1}}`, `{"texts": "a"}`,
		`{"texts": [["a"]]}`, `{"token_ids": [[1]], "texts": 5}`, `{"token_ids": [1, 2]}`, `{"texts": [1]`, `{"q":`} {
		r := post(t, url, wire.ContentTypeJSON, []byte(body), nil)
		msg := r.errorText(t)
		if r.status != 400 {
			t.Errorf("%s: status %d: %s", body, r.status, msg)
		}
		for _, bad := range []string{"wire.", "gpuencoder.", "jsonRequest", "JSONRequest", "Go ", "struct", "[]string", "int32", "tokenSeq"} {
			if strings.Contains(msg, bad) {
				t.Errorf("%s: message %q names a Go type (%q)", body, msg, bad)
			}
		}
	}
}

// TestErrorsEchoNoHeaders: neither the answers nor the logs of malformed or refused requests
// carry the Authorization header, other header values or the query text.
func TestErrorsEchoNoHeaders(t *testing.T) {
	var logs syncBuffer
	cfg := standinConfig()
	cfg.Token = "s3cret-token"
	cfg.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	_, url := startServer(t, cfg)
	addr := strings.TrimPrefix(url, "http://")
	const secret, query = "Bearer s3cret-token", "medieval-beekeeping"
	body := `{"texts": ["` + query + `"]}`
	reqs := map[string]string{
		"bad Content-Length": "POST /v1/embed?q=" + query + " HTTP/1.1\r\nHost: x\r\nAuthorization: " + secret +
			"\r\nContent-Length: abc\r\nContent-Type: application/json\r\n\r\n" + body,
		"bad method line": "P\x01ST /v1/embed?q=" + query + " HTTP/1.1\r\nHost: x\r\nAuthorization: " + secret + "\r\n\r\n",
		"bad header line": "POST /v1/embed HTTP/1.1\r\nHost: x\r\nAuthorization: " + secret + "\r\nX-" + query + "\r\n\r\n",
		"bad deadline": "POST /v1/embed HTTP/1.1\r\nHost: x\r\nAuthorization: " + secret + "\r\nX-Deadline-Ms: " + query +
			"\r\nContent-Type: application/json\r\nContent-Length: " + fmt.Sprint(len(body)) + "\r\n\r\n" + body,
		"bad Accept": "POST /v1/embed HTTP/1.1\r\nHost: x\r\nAuthorization: " + secret + "\r\nAccept: text/" + query +
			"\r\nContent-Type: application/json\r\nContent-Length: " + fmt.Sprint(len(body)) + "\r\n\r\n" + body,
		"bad Content-Type": "POST /v1/embed HTTP/1.1\r\nHost: x\r\nAuthorization: " + secret + "\r\nContent-Type: text/" + query +
			"\r\nContent-Length: " + fmt.Sprint(len(body)) + "\r\n\r\n" + body,
		"wrong token": "POST /v1/embed?q=" + query + " HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + query +
			"\r\nContent-Type: application/json\r\nContent-Length: " + fmt.Sprint(len(body)) + "\r\n\r\n" + body,
	}
	for name, req := range reqs {
		resp, answer := rawRequest(t, addr, req)
		if resp.StatusCode < 400 || resp.StatusCode >= 500 {
			t.Errorf("%s: status %d: %s", name, resp.StatusCode, answer)
		}
		if strings.Contains(answer, "s3cret") || strings.Contains(answer, query) {
			t.Errorf("%s: the answer echoes the request: %s", name, answer)
		}
	}
	if l := logs.String(); strings.Contains(l, "s3cret") || strings.Contains(l, query) {
		t.Errorf("the logs echo the request:\n%s", l)
	}
}

// TestLargeHeader431: request headers beyond the read buffer get 431, not 400.
func TestLargeHeader431(t *testing.T) {
	_, url := startServer(t, standinConfig())
	addr := strings.TrimPrefix(url, "http://")
	resp, answer := rawRequest(t, addr, "POST /v1/embed HTTP/1.1\r\nHost: x\r\nX-Big: "+strings.Repeat("a", 8<<10)+
		"\r\nContent-Length: 0\r\n\r\n")
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge || !strings.Contains(answer, "headers exceed the limit") {
		t.Fatalf("status %d: %s", resp.StatusCode, answer)
	}
	// A 4 KB header, over fasthttp's default buffer, is still read.
	b := jsonTokens(t, [][]int32{{1, 2}})
	resp, answer = rawRequest(t, addr, "POST /v1/embed HTTP/1.1\r\nHost: x\r\nX-Big: "+strings.Repeat("a", 5<<10)+
		"\r\nContent-Type: application/json\r\nContent-Length: "+fmt.Sprint(len(b))+"\r\n\r\n"+string(b))
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, answer)
	}
}
