// Package demo reads the bundled demo corpus (package data: a Taddy sample of real podcast
// episodes and 8 real RSS feeds) through package ingest. It lives apart from ingest so that
// packages reading corpora (and the edge, through ingest.IndexDoc) do not link the 3.2 MB
// of bundled data; only the commands and tests that want the demo corpus import it.
package demo
