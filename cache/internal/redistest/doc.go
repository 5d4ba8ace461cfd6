// Package redistest starts real redis-server processes on loopback for tests: a standalone
// server (which a test can kill and restart on the same port) and a 3-master Redis Cluster.
// Servers run without persistence (--save "" --appendonly no) in a temporary folder and are
// stopped by PID when the test ends.
//
// When redis-server (or redis-cli for a cluster) is not installed the test is skipped with a
// clear message, unless PODSEARCH_REQUIRE_REDIS=1 (as CI sets), in which case it fails.
package redistest
