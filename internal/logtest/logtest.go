// Package logtest records what a component logs through log/slog, for the
// tests that assert what is logged and what is not.
package logtest

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// Record is one logged record, its attributes flattened: a group's keys
// are prefixed with the group's name and a dot.
type Record struct {
	Level   slog.Level
	Message string
	Attrs   map[string]any
}

func (r Record) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %q", r.Level, r.Message)
	for _, k := range slices.Sorted(maps.Keys(r.Attrs)) {
		fmt.Fprintf(&b, " %s=%v", k, r.Attrs[k])
	}
	return b.String()
}

// Recorder keeps every record, at every level, of the loggers it makes.
type Recorder struct {
	mu   sync.Mutex
	recs []Record
}

// Logger returns a logger that records into r.
func (r *Recorder) Logger() *slog.Logger { return slog.New(&handler{r: r}) }

// Records returns the records at level or above, in the order logged.
func (r *Recorder) Records(level slog.Level) []Record {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []Record
	for _, rec := range r.recs {
		if rec.Level >= level {
			out = append(out, rec)
		}
	}
	return out
}

// Wait waits up to 10 s until n records at level or above were logged and
// returns them; the test fails if fewer came.
func (r *Recorder) Wait(t testing.TB, level slog.Level, n int) []Record {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		recs := r.Records(level)
		if len(recs) >= n {
			return recs
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d records at %s or above after 10 s, want %d: %v", len(recs), level, n, recs)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// handler is a slog.Handler that records into r, with the attributes and
// group of the logger it belongs to.
type handler struct {
	r      *Recorder
	attrs  []slog.Attr // from WithAttrs, keys already prefixed
	prefix string      // from WithGroup: "g." or ""
}

func (h *handler) Enabled(context.Context, slog.Level) bool { return true }

func (h *handler) Handle(_ context.Context, rec slog.Record) error {
	out := Record{Level: rec.Level, Message: rec.Message, Attrs: map[string]any{}}
	for _, a := range h.attrs {
		flatten(out.Attrs, "", a)
	}
	rec.Attrs(func(a slog.Attr) bool {
		flatten(out.Attrs, h.prefix, a)
		return true
	})
	h.r.mu.Lock()
	h.r.recs = append(h.r.recs, out)
	h.r.mu.Unlock()
	return nil
}

func (h *handler) WithAttrs(attrs []slog.Attr) slog.Handler {
	h2 := *h
	h2.attrs = append([]slog.Attr(nil), h.attrs...)
	for _, a := range attrs {
		h2.attrs = append(h2.attrs, slog.Attr{Key: h.prefix + a.Key, Value: a.Value})
	}
	return &h2
}

func (h *handler) WithGroup(name string) slog.Handler {
	h2 := *h
	h2.prefix = h.prefix + name + "."
	return &h2
}

// flatten adds attribute a to m under prefix, a group's members each
// under their own key.
func flatten(m map[string]any, prefix string, a slog.Attr) {
	v := a.Value.Resolve()
	if v.Kind() == slog.KindGroup {
		p := prefix
		if a.Key != "" {
			p += a.Key + "."
		}
		for _, g := range v.Group() {
			flatten(m, p, g)
		}
		return
	}
	m[prefix+a.Key] = v.Any()
}
