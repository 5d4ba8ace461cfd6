package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// ReadQueries reads query texts from JSON Lines files: each line's "query" and, when
// present, its "description" (the TREC podcast topics have both; the hand-written queries
// only a query). Blank and repeated texts are dropped; the order is the files' order.
func ReadQueries(paths ...string) ([]string, error) {
	var out []string
	seen := map[string]bool{}
	add := func(s string) {
		s = strings.Join(strings.Fields(s), " ")
		if s != "" && !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	for _, p := range paths {
		f, err := os.Open(p)
		if err != nil {
			return nil, err
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 1<<16), 1<<20)
		line := 0
		for sc.Scan() {
			line++
			if strings.TrimSpace(sc.Text()) == "" {
				continue
			}
			var q struct {
				Query       string `json:"query"`
				Description string `json:"description"`
			}
			if err := json.Unmarshal(sc.Bytes(), &q); err != nil {
				f.Close()
				return nil, fmt.Errorf("%s:%d: %w", p, line, err)
			}
			add(q.Query)
			add(q.Description)
		}
		err = sc.Err()
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no queries in %v", paths)
	}
	return out, nil
}

// newQuery returns the i-th never-repeating query: the texts themselves first, then
// ordered pairs of two different texts joined by "and", then (past texts x texts) the same
// again with a round number appended, so a long run never runs out of new queries.
func newQuery(texts []string, i int) string {
	n := len(texts)
	if n == 1 {
		return texts[0] + suffix(i)
	}
	round, i := i/(n*n), i%(n*n)
	if i < n {
		return texts[i] + suffix(round)
	}
	i -= n
	a, b := i/(n-1), i%(n-1)
	if b >= a {
		b++
	}
	return texts[a] + " and " + texts[b] + suffix(round)
}

func suffix(round int) string {
	if round == 0 {
		return ""
	}
	return " " + strconv.Itoa(round+1)
}
