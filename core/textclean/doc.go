// Package textclean turns the HTML-laden descriptions that podcast feeds and datasets carry
// into plain text fit for embedding and keyword search: tags stripped, entities decoded,
// URLs dropped, invisible characters removed and whitespace collapsed to single spaces.
//
// It is deliberately small and dependency-light (golang.org/x/net/html for tokenising), and
// never panics on any input: it is fuzzed with arbitrary bytes.
package textclean
