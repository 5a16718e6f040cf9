package main

import (
	"io"
	"log"
	"log/slog"
	"strings"

	"github.com/spf13/cobra"
)

// defaultLogLevel is the least level the daemons log by default: warnings
// and errors, the levels at which the libraries log what an operator must
// act on. In normal operation nothing is logged at those levels, so a
// normal run prints only its ready line.
const defaultLogLevel = "warn"

// logFlags are the --log-level and --log-format flags of mount and serve.
type logFlags struct {
	level  string
	format string
}

// add defines the flags on c, completed with their values.
func (l *logFlags) add(c *cobra.Command) {
	c.Flags().StringVar(&l.level, "log-level", defaultLogLevel,
		"log records of `LEVEL` and above on stderr: debug, info, warn or error;\n"+
			"warn logs only what an operator must act on")
	c.Flags().StringVar(&l.format, "log-format", "text", "log records as `FORMAT`: text (key=value) or json (one object a line)")
	c.RegisterFlagCompletionFunc("log-level", cobra.FixedCompletions(
		[]cobra.Completion{"debug", "info", "warn", "error"}, cobra.ShellCompDirectiveNoFileComp))
	c.RegisterFlagCompletionFunc("log-format", cobra.FixedCompletions(
		[]cobra.Completion{"text", "json"}, cobra.ShellCompDirectiveNoFileComp))
}

// logger returns the logger the flags ask for, writing to w; a bad value is
// a usage error.
func (l *logFlags) logger(w io.Writer) (*slog.Logger, error) {
	var level slog.Level
	switch strings.ToLower(l.level) {
	case "debug":
		level = slog.LevelDebug
	case "info":
		level = slog.LevelInfo
	case "warn":
		level = slog.LevelWarn
	case "error":
		level = slog.LevelError
	default:
		return nil, usageErrorf("--log-level %q: want debug, info, warn or error", l.level)
	}
	opt := &slog.HandlerOptions{Level: level}
	switch strings.ToLower(l.format) {
	case "text":
		return slog.New(slog.NewTextHandler(w, opt)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opt)), nil
	}
	return nil, usageErrorf("--log-format %q: want text or json", l.format)
}

// captureStdLog sends what the log package's default logger prints to
// logger, at level info, until restore is called. go-fuse logs there: its
// per-request trace (mount --debug) and notes that need no action, such as
// a splice it fell back from.
func captureStdLog(logger *slog.Logger) (restore func()) {
	out, flags, prefix := log.Writer(), log.Flags(), log.Prefix()
	log.SetOutput(slog.NewLogLogger(logger.Handler(), slog.LevelInfo).Writer())
	log.SetFlags(0)
	log.SetPrefix("")
	return func() {
		log.SetOutput(out)
		log.SetFlags(flags)
		log.SetPrefix(prefix)
	}
}
