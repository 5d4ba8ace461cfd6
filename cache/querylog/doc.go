// Package querylog reads search query logs for cache warm-up: plain lines (one query per
// line), TSV (query<TAB>count) and JSONL (an object per line with the query under "query",
// "q" or "text" and an optional "count"). The format is given or detected: a file whose
// first non-empty line is a JSON object is JSONL, any other is read line by line as TSV
// where the last tab-separated field is an integer and as a plain query otherwise. Queries
// are normalised as the edge does (white space and control characters collapsed) and
// duplicates are merged by summing their counts.
package querylog
