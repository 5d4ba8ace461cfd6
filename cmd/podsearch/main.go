// Command podsearch is the single binary of the podsearch semantic podcast search engine.
//
// Every job is a subcommand (setup, embed, ingest, pairs, index, train, eval, serve-encoder,
// serve-edge, warmup, bench ...). Run `podsearch -h` for the list and
// `podsearch SUBCOMMAND -h` for the flags of one.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sort"
	"strings"
)

// command is one subcommand of the binary.
type command struct {
	name    string
	summary string
	// run parses args (the arguments after the subcommand name) and does the job.
	run func(args []string) error
}

var commands = map[string]*command{}

// register adds a subcommand; each subcommand registers itself from an init function in its
// own file (cmd_NAME.go), so adding one touches no other file.
func register(c *command) {
	if _, dup := commands[c.name]; dup {
		panic("podsearch: subcommand registered twice: " + c.name)
	}
	commands[c.name] = c
}

// errUsage marks an error that was caused by bad flags; main prints it and exits with 2.
var errUsage = errors.New("usage error")

// newFlagSet returns a FlagSet whose -h output names the subcommand, its summary and every flag.
func newFlagSet(name, usageLine, summary string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.Usage = func() {
		out := fs.Output()
		fmt.Fprintf(out, "usage: podsearch %s %s\n\n%s\n\nflags:\n", name, usageLine, summary)
		fs.PrintDefaults()
	}
	return fs
}

// parseFlags parses args into fs, turning -h into a clean exit and bad flags into errUsage.
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	return nil
}

func usage(w io.Writer) {
	fmt.Fprintf(w, "podsearch: semantic search for podcast episodes\n\nusage: podsearch SUBCOMMAND [flags]\n\nsubcommands:\n")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-14s %s\n", n, commands[n].summary)
	}
	fmt.Fprintf(w, "\nRun 'podsearch SUBCOMMAND -h' for the flags of a subcommand.\n"+
		"Environment: PODSEARCH_HOME (model and runtime cache, default ~/.cache/podsearch), "+
		"PODSEARCH_LOG_LEVEL (debug, info, warn, error), PODSEARCH_LOG_FORMAT (text, json).\n")
}

func main() {
	setupLogging()
	if len(os.Args) < 2 || os.Args[1] == "-h" || os.Args[1] == "--help" || os.Args[1] == "help" {
		usage(os.Stdout)
		if len(os.Args) < 2 {
			os.Exit(2)
		}
		return
	}
	c, ok := commands[os.Args[1]]
	if !ok {
		fmt.Fprintf(os.Stderr, "podsearch: unknown subcommand %q\n\n", os.Args[1])
		usage(os.Stderr)
		os.Exit(2)
	}
	if err := c.run(os.Args[2:]); err != nil {
		fmt.Fprintf(os.Stderr, "podsearch %s: %v\n", c.name, err)
		if errors.Is(err, errUsage) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

// setupLogging installs the default slog logger on stderr, configured by environment.
func setupLogging() {
	level := slog.LevelInfo
	switch strings.ToLower(os.Getenv("PODSEARCH_LOG_LEVEL")) {
	case "debug":
		level = slog.LevelDebug
	case "warn":
		level = slog.LevelWarn
	case "error":
		level = slog.LevelError
	}
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler = slog.NewTextHandler(os.Stderr, opts)
	if strings.ToLower(os.Getenv("PODSEARCH_LOG_FORMAT")) == "json" {
		h = slog.NewJSONHandler(os.Stderr, opts)
	}
	slog.SetDefault(slog.New(h))
}

// flagSet reports whether the command line set the flag name.
func flagSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}
