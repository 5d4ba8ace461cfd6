// Package querylog reads search query logs for cache warm-up: plain lines (one query per
// line), TSV (query<TAB>count) and JSONL (an object per line with the query under "query",
// "q" or "text" and an optional "count"), detected per line. Queries are normalised as the edge
// does (white space and control characters collapsed) and duplicates merged by summing their counts.
package querylog
