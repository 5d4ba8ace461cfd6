package edge

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/valyala/fasthttp"

	"github.com/podsearch/podsearch/core/textclean"
)

// apiError is a request failure with its HTTP status and a message for the client.
type apiError struct {
	status int
	msg    string
}

func (e *apiError) Error() string { return e.msg }

func badRequest(format string, args ...any) *apiError {
	return &apiError{status: fasthttp.StatusBadRequest, msg: fmt.Sprintf(format, args...)}
}

func tooLarge(format string, args ...any) *apiError {
	return &apiError{status: fasthttp.StatusRequestEntityTooLarge, msg: fmt.Sprintf(format, args...)}
}

// query is one validated, normalised search request.
type query struct {
	Text    string
	K       int
	Mode    Mode
	Filters Filters
}

// rawQuery is a query as a client sends it, in the URL or in a POST body.
type rawQuery struct {
	Q    string `json:"q"`
	K    *int   `json:"k,omitempty"`
	Lang string `json:"lang,omitempty"`
	Show string `json:"show,omitempty"`
	From string `json:"from,omitempty"`
	To   string `json:"to,omitempty"`
	Mode string `json:"mode,omitempty"`
}

// postBody is the JSON body of POST /v1/search.
type postBody struct {
	Queries []rawQuery `json:"queries"`
}

// validator checks requests against the node's limits.
type validator struct {
	maxQueryBytes, maxQueries, maxBodyBytes int
	defaultK, maxK                          int
	defaultMode                             Mode
}

// getParams are the URL parameters GET /v1/search accepts.
var getParams = map[string]bool{"q": true, "k": true, "lang": true, "show": true, "from": true, "to": true, "mode": true}

// parseGet validates the URL parameters of GET /v1/search.
func (v *validator) parseGet(args *fasthttp.Args) (query, *apiError) {
	var raw rawQuery
	seen := map[string]bool{}
	for key, value := range args.All() {
		k := string(key)
		if !getParams[k] {
			return query{}, badRequest("unknown parameter %q (accepted: q, k, lang, show, from, to, mode)", truncate(k, 64))
		}
		if seen[k] {
			return query{}, badRequest("parameter %q given more than once", k)
		}
		seen[k] = true
		val := string(value)
		switch k {
		case "q":
			raw.Q = val
		case "k":
			if val == "" { // an empty form field means the default, like lang= or mode=
				continue
			}
			n, err := strconv.Atoi(val)
			if err != nil {
				return query{}, badRequest("k must be an integer between 1 and %d, not %q", v.maxK, truncate(val, 32))
			}
			raw.K = &n
		case "lang":
			raw.Lang = val
		case "show":
			raw.Show = val
		case "from":
			raw.From = val
		case "to":
			raw.To = val
		case "mode":
			raw.Mode = val
		}
	}
	if !seen["q"] {
		return query{}, badRequest("parameter q (the query text) is required")
	}
	return v.check(raw)
}

// parsePost validates the JSON body of POST /v1/search.
func (v *validator) parsePost(body []byte) ([]query, *apiError) {
	if len(body) > v.maxBodyBytes {
		return nil, tooLarge("request body is %d bytes; the limit is %d", len(body), v.maxBodyBytes)
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, badRequest(`request body is empty; send {"queries": [{"q": "..."}]}`)
	}
	if !utf8.Valid(body) {
		return nil, badRequest("request body is not valid UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	var pb postBody
	if err := dec.Decode(&pb); err != nil {
		return nil, badRequest("request body is not a valid search request: %s", jsonProblem(err))
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, badRequest("request body has data after the JSON object")
	}
	if len(pb.Queries) == 0 {
		return nil, badRequest(`"queries" is empty; send at least one {"q": "..."}`)
	}
	if len(pb.Queries) > v.maxQueries {
		return nil, tooLarge("%d queries in one request; the limit is %d", len(pb.Queries), v.maxQueries)
	}
	out := make([]query, len(pb.Queries))
	for i, raw := range pb.Queries {
		q, aerr := v.check(raw)
		if aerr != nil {
			aerr.msg = fmt.Sprintf("queries[%d]: %s", i, aerr.msg)
			return nil, aerr
		}
		out[i] = q
	}
	return out, nil
}

// check validates and normalises one raw query.
func (v *validator) check(raw rawQuery) (query, *apiError) {
	q := query{K: v.defaultK}
	if len(raw.Q) > v.maxQueryBytes {
		return q, tooLarge("q is %d bytes; the limit is %d", len(raw.Q), v.maxQueryBytes)
	}
	if !utf8.ValidString(raw.Q) {
		return q, badRequest("q is not valid UTF-8")
	}
	q.Text = Normalize(raw.Q)
	if invisible(q.Text) {
		return q, badRequest("q is empty")
	}
	if raw.K != nil {
		if *raw.K < 1 || *raw.K > v.maxK {
			return q, badRequest("k must be between 1 and %d, not %d", v.maxK, *raw.K)
		}
		q.K = *raw.K
	}
	mode, err := ParseMode(raw.Mode, v.defaultMode)
	if err != nil {
		return q, badRequest("%v", err)
	}
	q.Mode = mode
	if raw.Lang != "" {
		if !validLang(raw.Lang) {
			return q, badRequest("lang must be a language code such as en or pt-BR, not %q", truncate(raw.Lang, 32))
		}
		q.Filters.Language = strings.ToLower(raw.Lang)
	}
	if raw.Show != "" {
		if len(raw.Show) > 256 || !utf8.ValidString(raw.Show) {
			return q, badRequest("show must be a show id of at most 256 bytes of UTF-8")
		}
		q.Filters.ShowID = raw.Show
	}
	if raw.From != "" {
		t, err := parseDate(raw.From, false)
		if err != nil {
			return q, badRequest("from: %v", err)
		}
		q.Filters.From = t
	}
	if raw.To != "" {
		t, err := parseDate(raw.To, true)
		if err != nil {
			return q, badRequest("to: %v", err)
		}
		q.Filters.To = t
	}
	if !q.Filters.From.IsZero() && !q.Filters.To.IsZero() && q.Filters.To.Before(q.Filters.From) {
		return q, badRequest("from (%s) is after to (%s)", raw.From, raw.To)
	}
	return q, nil
}

// invisible reports whether s has nothing to search for: it is empty or holds only
// spaces, control and format characters (zero-width spaces and joiners, direction marks,
// the byte order mark) and variation selectors.
func invisible(s string) bool {
	for _, r := range s {
		if unicode.IsSpace(r) || unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || unicode.Is(unicode.Variation_Selector, r) {
			continue
		}
		return false
	}
	return true
}

// jsonProblem describes a JSON decoding error for a client: where and what, without the
// Go types the decoder names (they are this program's internals, not the API's).
func jsonProblem(err error) string {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return fmt.Sprintf("not valid JSON at byte %d", syn.Offset)
	case errors.As(err, &typ):
		if typ.Field != "" {
			return fmt.Sprintf("field %q cannot be a JSON %s", typ.Field, typ.Value)
		}
		return fmt.Sprintf("the body cannot be a JSON %s", typ.Value)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "the JSON ends early"
	}
	msg := strings.TrimPrefix(err.Error(), "json: ")
	if strings.HasPrefix(msg, "unknown field ") || strings.HasPrefix(msg, "vector: ") {
		return truncate(msg, 120)
	}
	return "not a valid JSON document for this endpoint"
}

// Normalize is textclean.NormalizeQuery: the one query normalisation the edge and the
// warm-up job share.
func Normalize(s string) string { return textclean.NormalizeQuery(s) }

func validLang(s string) bool {
	if len(s) < 2 || len(s) > 16 {
		return false
	}
	primary, region, hasRegion := strings.Cut(s, "-")
	if len(primary) < 2 || len(primary) > 3 || !isAlnum(primary, false) {
		return false
	}
	return !hasRegion || (len(region) >= 2 && len(region) <= 8 && isAlnum(region, true))
}

func isAlnum(s string, digits bool) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || digits && '0' <= c && c <= '9') {
			return false
		}
	}
	return true
}

// parseDate accepts YYYY-MM-DD (the whole day: its start, or its end when endOfDay) or
// RFC 3339.
func parseDate(s string, endOfDay bool) (time.Time, error) {
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		if endOfDay {
			t = t.Add(24*time.Hour - time.Nanosecond)
		}
		return t, nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("want a date as YYYY-MM-DD or RFC 3339, not %q", truncate(s, 40))
}
