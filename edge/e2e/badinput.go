package e2e

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"strings"
	"syscall"
	"time"
)

// BadInput is one malformed or unauthorised request and what an edge answered.
type BadInput struct {
	Name   string `json:"name"`
	Method string `json:"-"`
	Path   string `json:"-"` // path and raw query
	Body   string `json:"-"`
	// Header holds extra request headers, name then value.
	Header []string `json:"-"`
	// Raw, when set, is sent as written on a new connection instead (a request no HTTP
	// client would form).
	Raw string `json:"-"`
	// Want, when set, is the one status the answer must have (431 for oversized headers,
	// 200 for the valid requests among them); otherwise any 4xx will do.
	Want   int    `json:"want,omitempty"`
	Status int    `json:"status"` // 0 when no answer came back
	Answer string `json:"answer"` // the start of the answer body, or the transport error
	// Leak says what the answer gave away that it must not (a token or query text it was
	// sent, a Go type name); empty when nothing.
	Leak string `json:"leak,omitempty"`
}

// OK reports whether the service answered as it must, leaking nothing: a 4xx (refused
// cleanly), or exactly Want when set.
func (b BadInput) OK() bool {
	if b.Leak != "" {
		return false
	}
	if b.Want != 0 {
		return b.Status == b.Want
	}
	return b.Status >= 400 && b.Status <= 499
}

// Planted in bad requests: no answer may contain them.
const (
	secretToken = "sekrit-token-value-e2e"
	secretQuery = "medievalbeekeepingsecretquery"
)

// vectorB64 is the peer protocol's encoding of 512 copies of x.
func vectorB64(x float32) string {
	b := make([]byte, 4*512)
	for i := 0; i < 512; i++ {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	return base64.StdEncoding.EncodeToString(b)
}

// badInputs are requests every edge must refuse with a 4xx (an oversized header with
// 431), and one valid request it must answer: a peer's shard-search with a lowercase
// "bearer". peerToken and model are the cluster's, so that shard-search requests get past
// the token and model checks to the checks of their vectors.
func badInputs(peerToken, model string) []BadInput {
	long := strings.Repeat("podcast ", 100<<10/8)
	peer := []string{"Authorization", "Bearer " + peerToken}
	dense := func(vec string) string {
		return `{"model":"` + model + `","queries":[{"k":3,"mode":"dense","keywords":"x","vector":"` + vec + `"}]}`
	}
	kw := `{"queries":[{"k":3,"mode":"keyword","keywords":"history"}]}`
	raw := func(header string) string {
		return "GET /v1/search?q=" + secretQuery + " HTTP/1.1\r\nHost: edge\r\nAuthorization: Bearer " + secretToken + "\r\n" + header + "\r\n\r\n"
	}
	return []BadInput{
		{Name: "empty q", Method: http.MethodGet, Path: "/v1/search?q="},
		{Name: "no q", Method: http.MethodGet, Path: "/v1/search"},
		{Name: "blank q", Method: http.MethodGet, Path: "/v1/search?q=%20%20%09"},
		{Name: "zero-width q", Method: http.MethodGet, Path: "/v1/search?q=%E2%80%8B"},
		{Name: "format-only q", Method: http.MethodGet, Path: "/v1/search?q=%E2%80%8B%E2%80%8C%E2%80%8D%EF%BB%BF%E2%81%A0"},
		{Name: "100 KB q", Method: http.MethodGet, Path: "/v1/search?q=" + url.QueryEscape(long)},
		{Name: "invalid UTF-8 q", Method: http.MethodGet, Path: "/v1/search?q=caf%C3%28%FF%FE"},
		{Name: "unknown parameter", Method: http.MethodGet, Path: "/v1/search?q=history&colour=blue"},
		{Name: "repeated parameter", Method: http.MethodGet, Path: "/v1/search?q=history&q=nba"},
		{Name: "huge k", Method: http.MethodGet, Path: "/v1/search?q=history&k=1000000000000000000000"},
		{Name: "k zero", Method: http.MethodGet, Path: "/v1/search?q=history&k=0"},
		{Name: "negative k", Method: http.MethodGet, Path: "/v1/search?q=history&k=-5"},
		{Name: "bad mode", Method: http.MethodGet, Path: "/v1/search?q=history&mode=psychic"},
		{Name: "bad date", Method: http.MethodGet, Path: "/v1/search?q=history&from=yesterday"},
		{Name: "POST not JSON", Method: http.MethodPost, Path: "/v1/search", Body: "{not json"},
		{Name: "POST unknown field", Method: http.MethodPost, Path: "/v1/search", Body: `{"queries":[{"q":"nba","colour":"blue"}]}`},
		{Name: "POST queries not a list", Method: http.MethodPost, Path: "/v1/search", Body: `{"queries":"nba"}`},
		{Name: "POST array body", Method: http.MethodPost, Path: "/v1/search", Body: `["nba"]`},
		{Name: "POST q a number", Method: http.MethodPost, Path: "/v1/search", Body: `{"queries":[{"q":5}]}`},
		{Name: "POST invalid UTF-8", Method: http.MethodPost, Path: "/v1/search", Body: "{\"queries\":[{\"q\":\"caf\xc3\x28\"}]}"},
		{Name: "POST huge k", Method: http.MethodPost, Path: "/v1/search", Body: `{"queries":[{"q":"nba","k":99999999999}]}`},
		{Name: "POST 100 KB q", Method: http.MethodPost, Path: "/v1/search", Body: `{"queries":[{"q":"` + long + `"}]}`},
		{Name: "POST no queries", Method: http.MethodPost, Path: "/v1/search", Body: `{"queries":[]}`},
		{Name: "POST trailing data", Method: http.MethodPost, Path: "/v1/search", Body: `{"queries":[{"q":"nba"}]} {}`},
		{Name: "POST zero-width q", Method: http.MethodPost, Path: "/v1/search", Body: `{"queries":[{"q":"\u200b"}]}`},
		{Name: "Content-Length abc", Raw: raw("Content-Length: abc")},
		{Name: "Content-Length -1", Raw: raw("Content-Length: -1")},
		{Name: "bad Transfer-Encoding", Raw: raw("Transfer-Encoding: bogus")},
		{Name: "header without colon", Raw: raw("Broken header line")},
		{Name: "shard-search no token", Method: http.MethodPost, Path: "/v1/shard-search", Body: kw},
		{Name: "shard-search wrong token", Method: http.MethodPost, Path: "/v1/shard-search", Body: kw, Header: []string{"Authorization", "Bearer " + secretToken}},
		{Name: "shard-search 3e38 vector", Method: http.MethodPost, Path: "/v1/shard-search", Body: dense(vectorB64(3e38)), Header: peer},
		{Name: "shard-search zero vector", Method: http.MethodPost, Path: "/v1/shard-search", Body: dense(vectorB64(0)), Header: peer},
		{Name: "shard-search NaN vector", Method: http.MethodPost, Path: "/v1/shard-search", Body: dense(vectorB64(float32(math.NaN()))), Header: peer},
		{Name: "shard-search trailing garbage", Method: http.MethodPost, Path: "/v1/shard-search", Body: kw + "garbage", Header: peer},
		{Name: "shard-search wrong type", Method: http.MethodPost, Path: "/v1/shard-search", Body: `{"queries":5}`, Header: peer},
		{Name: "reload without token", Method: http.MethodPost, Path: "/admin/reload"},
		{Name: "reload wrong token", Method: http.MethodPost, Path: "/admin/reload", Header: []string{"Authorization", "bearer " + secretToken}},
		{Name: "300 KB header", Method: http.MethodGet, Path: "/v1/search?q=history", Header: []string{"X-Padding", strings.Repeat("p", 300<<10)}, Want: http.StatusRequestHeaderFieldsTooLarge},
		{Name: "shard-search lowercase bearer (valid)", Method: http.MethodPost, Path: "/v1/shard-search", Body: kw, Header: []string{"Authorization", "bearer " + peerToken}, Want: http.StatusOK},
	}
}

// encoderBadInputs are requests every encoder must refuse with a 4xx (the encoder's
// inputs of issue #17), and one valid request it must answer: the token sent with a
// lowercase "bearer", which the edges accept too. token is the encoders' own.
func encoderBadInputs(token string) []BadInput {
	auth := []string{"Authorization", "Bearer " + token}
	embed := func(name, body string, want int, header ...string) BadInput {
		return BadInput{Name: "encoder " + name, Method: http.MethodPost, Path: "/v1/embed", Body: body, Want: want, Header: header}
	}
	raw := func(token, header, body string) string {
		return "POST /v1/embed HTTP/1.1\r\nHost: encoder\r\nAuthorization: Bearer " + token + "\r\n" + header + "\r\n\r\n" + body
	}
	// fasthttp reads up to 8 KB of a body before the handler runs; the rest is never sent.
	prefix := `{"texts":["` + secretQuery + strings.Repeat("a", 8<<10)
	texts := `{"texts":["` + secretQuery + `"]}`
	return []BadInput{
		embed("token_ids [[null]]", `{"token_ids":[[null]]}`, 0, auth...),
		embed("token_ids [[1.5]]", `{"token_ids":[[1.5]]}`, 0, auth...),
		embed("token id past the vocabulary", `{"token_ids":[[99999999]]}`, 0, auth...),
		embed("texts and token_ids", `{"texts":["x"],"token_ids":[[5]]}`, 0, auth...),
		embed("trailing data", `{"texts":["x"]} {}`, 0, auth...),
		embed("no token", texts, http.StatusUnauthorized),
		embed("wrong token", texts, http.StatusUnauthorized, "Authorization", "Bearer "+secretToken),
		embed("8 KB header", texts, http.StatusRequestHeaderFieldsTooLarge, "Authorization", "Bearer "+token, "X-Padding", strings.Repeat("p", 8<<10)),
		embed("lowercase bearer (valid)", `{"texts":["history of the roman empire"]}`, http.StatusOK, "Authorization", "bearer "+token),
		{Name: "encoder Content-Length abc", Raw: raw(secretToken, "Content-Length: abc", "")},
		{Name: "encoder Content-Length over the limit", Raw: raw(token, "Content-Type: application/json\r\nContent-Length: 104857600", prefix), Want: http.StatusRequestEntityTooLarge},
	}
}

// SendBadInputs sends every malformed or unauthorised request to edge i and returns the
// answers; each should be a 4xx that gives nothing away (BadInput.OK).
func (c *Cluster) SendBadInputs(ctx context.Context, i int) []BadInput {
	return sendAll(ctx, c.Edges[i], badInputs(c.PeerToken, c.Fingerprint), c.PeerToken, c.AdminToken)
}

// SendEncoderBadInputs sends the encoders' bad inputs (and the valid lowercase-bearer
// request) to encoder i, straight to its port, and returns the answers (BadInput.OK); nil
// when the encoder was killed (KillEncoder).
func (c *Cluster) SendEncoderBadInputs(ctx context.Context, i int) []BadInput {
	en := c.encoders[i]
	en.mu.Lock()
	killed := en.killed
	en.mu.Unlock()
	if killed {
		return nil
	}
	return sendAll(ctx, c.Encoders[i], encoderBadInputs(c.EncoderToken), c.EncoderToken)
}

// sendAll sends the requests in out to base and fills in the answers; an answer that holds
// a planted secret, one of tokens, a Go type or a folder is marked as a leak.
func sendAll(ctx context.Context, base string, out []BadInput, tokens ...string) []BadInput {
	client := &http.Client{Timeout: 10 * time.Second}
	for i := range out {
		b := &out[i]
		if b.Raw != "" {
			b.Status, b.Answer = sendRaw(ctx, strings.TrimPrefix(base, "http://"), b.Raw)
		} else {
			resp, err := sendHTTP(ctx, client, base, b)
			// An oversized header is answered (431) while the client is still writing it; the
			// server then closes with the rest unread, and TCP may reset the connection before
			// the answer is read. That refusal is retried, so the 431 itself is checked.
			for try := 1; err != nil && b.Want == http.StatusRequestHeaderFieldsTooLarge && resetBeforeAnswer(err) && try < 5; try++ {
				resp, err = sendHTTP(ctx, client, base, b)
			}
			if err != nil {
				b.Answer = err.Error()
				continue
			}
			msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
			resp.Body.Close()
			b.Status, b.Answer = resp.StatusCode, strings.TrimSpace(string(msg))
		}
		leaks := append([]string{secretToken, secretQuery}, tokens...)
		if b.Want < 200 || b.Want > 299 {
			// An error message; a valid answer's episode text may well hold "edge.".
			leaks = append(leaks, "Go value", "Go struct", "edge.", "wire.", "/tmp/", "/home/", "/root/")
		}
		for _, bad := range leaks {
			if bad != "" && strings.Contains(b.Answer, bad) {
				b.Leak = "the answer holds " + bad
				break
			}
		}
		b.Answer = truncate(b.Answer, 300)
	}
	return out
}

// sendHTTP sends b (not Raw) to base with client.
func sendHTTP(ctx context.Context, client *http.Client, base string, b *BadInput) (*http.Response, error) {
	var body io.Reader
	if b.Body != "" {
		body = strings.NewReader(b.Body)
	}
	req, err := http.NewRequestWithContext(ctx, b.Method, base+b.Path, body)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for j := 0; j+1 < len(b.Header); j += 2 {
		req.Header.Set(b.Header[j], b.Header[j+1])
	}
	return client.Do(req)
}

// resetBeforeAnswer reports whether err is the connection being reset or broken while the
// request was still being written.
func resetBeforeAnswer(err error) bool {
	return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) ||
		strings.Contains(err.Error(), "connection reset") || strings.Contains(err.Error(), "broken pipe")
}

// sendRaw writes req on a new connection to addr and returns the answer's status and body.
func sendRaw(ctx context.Context, addr, req string) (int, string) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return 0, err.Error()
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(conn, req); err != nil {
		return 0, err.Error()
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	return resp.StatusCode, strings.TrimSpace(string(msg))
}
