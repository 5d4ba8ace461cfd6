package e2e

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// BadInput is one malformed request and the status an edge answered it with.
type BadInput struct {
	Name   string
	Method string
	Path   string // path and raw query
	Body   string
	Status int    // 0 when no answer came back
	Answer string // the start of the answer body, or the transport error
}

// badInputs are requests every edge must refuse with a 4xx.
func badInputs() []BadInput {
	long := strings.Repeat("podcast ", 100<<10/8)
	return []BadInput{
		{Name: "empty q", Method: http.MethodGet, Path: "/v1/search?q="},
		{Name: "no q", Method: http.MethodGet, Path: "/v1/search"},
		{Name: "blank q", Method: http.MethodGet, Path: "/v1/search?q=%20%20%09"},
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
		{Name: "POST invalid UTF-8", Method: http.MethodPost, Path: "/v1/search", Body: "{\"queries\":[{\"q\":\"caf\xc3\x28\"}]}"},
		{Name: "POST huge k", Method: http.MethodPost, Path: "/v1/search", Body: `{"queries":[{"q":"nba","k":99999999999}]}`},
		{Name: "POST 100 KB q", Method: http.MethodPost, Path: "/v1/search", Body: `{"queries":[{"q":"` + long + `"}]}`},
		{Name: "POST no queries", Method: http.MethodPost, Path: "/v1/search", Body: `{"queries":[]}`},
	}
}

// SendBadInputs sends every malformed request to the edge at base and returns the
// answers; each should be a 4xx.
func SendBadInputs(ctx context.Context, base string) []BadInput {
	out := badInputs()
	client := &http.Client{}
	for i := range out {
		b := &out[i]
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
		resp, err := client.Do(req)
		if err != nil {
			b.Answer = err.Error()
			continue
		}
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 300))
		resp.Body.Close()
		b.Status, b.Answer = resp.StatusCode, strings.TrimSpace(string(msg))
	}
	return out
}
