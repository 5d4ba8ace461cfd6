package e2e

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/binary"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"strings"
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
	Raw    string `json:"-"`
	Status int    `json:"status"` // 0 when no answer came back
	Answer string `json:"answer"` // the start of the answer body, or the transport error
	// Leak says what the answer gave away that it must not (a token or query text it was
	// sent, a Go type name); empty when nothing.
	Leak string `json:"leak,omitempty"`
}

// OK reports whether the edge refused the request cleanly: a 4xx that leaks nothing.
func (b BadInput) OK() bool { return b.Status >= 400 && b.Status <= 499 && b.Leak == "" }

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

// badInputs are requests every edge must refuse with a 4xx. peerToken and model are the
// cluster's, so that shard-search requests get past the token and model checks to the
// checks of their vectors.
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
	}
}

// SendBadInputs sends every malformed or unauthorised request to edge i and returns the
// answers; each should be a 4xx that gives nothing away (BadInput.OK).
func (c *Cluster) SendBadInputs(ctx context.Context, i int) []BadInput {
	base := c.Edges[i]
	out := badInputs(c.PeerToken, c.Fingerprint)
	client := &http.Client{Timeout: 10 * time.Second}
	for i := range out {
		b := &out[i]
		if b.Raw != "" {
			b.Status, b.Answer = sendRaw(ctx, strings.TrimPrefix(base, "http://"), b.Raw)
		} else {
			var body io.Reader
			if b.Body != "" {
				body = strings.NewReader(b.Body)
			}
			req, err := http.NewRequestWithContext(ctx, b.Method, base+b.Path, body)
			if err != nil {
				b.Answer = err.Error()
				continue
			}
			if body != nil {
				req.Header.Set("Content-Type", "application/json")
			}
			for j := 0; j+1 < len(b.Header); j += 2 {
				req.Header.Set(b.Header[j], b.Header[j+1])
			}
			resp, err := client.Do(req)
			if err != nil {
				b.Answer = err.Error()
				continue
			}
			msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
			resp.Body.Close()
			b.Status, b.Answer = resp.StatusCode, strings.TrimSpace(string(msg))
		}
		for _, bad := range []string{secretToken, secretQuery, "Go value", "Go struct", "edge.", "wire.", "/tmp/", "/home/", "/root/"} {
			if strings.Contains(b.Answer, bad) {
				b.Leak = "the answer holds " + bad
				break
			}
		}
		b.Answer = truncate(b.Answer, 300)
	}
	return out
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
