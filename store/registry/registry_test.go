package registry

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cowfs/cowfs/store"
	"github.com/cowfs/cowfs/store/local"
	"github.com/cowfs/cowfs/store/mem"
)

// open opens spec and closes the store when the test ends.
func open(t *testing.T, spec string, opt *Options) store.Store {
	t.Helper()
	st, err := Open(t.Context(), spec, opt)
	if err != nil {
		t.Fatalf("Open(%q): %v", spec, err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// works puts a blob into st, commits it under a root and reads both back.
func works(t *testing.T, st store.Store) {
	t.Helper()
	id, err := st.Put(t.Context(), []byte("blob"))
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Commit(t.Context(), store.Batch{Refs: map[store.ID]int64{id: 1}, Roots: []store.RootSwap{{Name: "r", New: id}}}); err != nil {
		t.Fatal(err)
	}
	if got, err := st.GetRoot(t.Context(), "r"); err != nil || got != id {
		t.Fatalf("GetRoot: %v, %v; want %v", got, err, id)
	}
}

// TestOpenKinds: "mem:" opens a new in-memory store each time, and any
// spec that names no kind the local store in that directory, created
// unless Options.MustExist; a path may hold colons.
func TestOpenKinds(t *testing.T) {
	m := open(t, "mem:", nil)
	if _, ok := m.(*mem.Store); !ok {
		t.Fatalf(`Open("mem:") returned a %T, want a *mem.Store`, m)
	}
	works(t, m)
	if roots, err := open(t, "mem:", nil).ListRoots(t.Context()); err != nil || len(roots) != 0 {
		t.Errorf(`a second Open("mem:"): roots %v, %v; want a new, empty store`, roots, err)
	}
	if _, err := open(t, "mem:", &Options{MustExist: true}).ListRoots(t.Context()); err != nil {
		t.Errorf(`Open("mem:") with MustExist: %v`, err)
	}

	base := t.TempDir()
	for _, dir := range []string{
		filepath.Join(base, "plain"),
		filepath.Join(base, "a:b"),
		filepath.Join(base, "mem:"), // an absolute path is never a kind
	} {
		st := open(t, dir, nil)
		if _, ok := st.(*local.Store); !ok {
			t.Fatalf("Open(%q) returned a %T, want a *local.Store", dir, st)
		}
		works(t, st)
		if err := st.Close(); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(filepath.Join(dir, "index.db")); err != nil {
			t.Errorf("no local store in %s after Open: %v", dir, err)
		}
		again := open(t, dir, &Options{MustExist: true})
		if id, err := again.GetRoot(t.Context(), "r"); err != nil || id.IsZero() {
			t.Errorf("reopening %s with MustExist: root r %v, %v; want what was committed", dir, id, err)
		}
	}

	// Relative paths: a one-letter prefix is no kind, ./ makes any name a path.
	t.Chdir(base)
	for _, rel := range []string{"c:dir", "./ab:c", "sub/mem:"} {
		st := open(t, rel, nil)
		if _, ok := st.(*local.Store); !ok {
			t.Errorf("Open(%q) returned a %T, want a *local.Store", rel, st)
		}
	}
}

// TestOpenErrors: specs of no known kind, a mem: with a location, and the
// local store's refusals, each said once in a message that names the spec
// or the directory, with the sentinel to test for.
func TestOpenErrors(t *testing.T) {
	base := t.TempDir()
	missing := filepath.Join(base, "missing")
	file := filepath.Join(base, "file")
	foreign := filepath.Join(base, "foreign")
	if err := os.WriteFile(file, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(foreign, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(foreign, "notes"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	held := filepath.Join(base, "held")
	open(t, held, nil)

	tests := []struct {
		spec      string
		mustExist bool
		want      string // the whole message, or its start if it ends in "..."
		is        error
	}{
		{"s3:bucket", false, `unknown store "s3:bucket" (a store is a directory or mem:)`, ErrSpec},
		{"nowhere:", false, `unknown store "nowhere:" (a store is a directory or mem:)`, ErrSpec},
		{"MEM:", false, `unknown store "MEM:" (a store is a directory or mem:)`, ErrSpec},
		{"ab:c", false, `unknown store "ab:c" (a store is a directory or mem:)`, ErrSpec},
		{"mem:x", false, `the mem store takes no location, got "mem:x"`, ErrSpec},
		{"mem://", false, `the mem store takes no location, got "mem://"`, ErrSpec},
		{"", false, "empty store spec", ErrSpec},
		{missing, true, "no store at " + missing, ErrNoStore},
		{file, true, "store " + file + " is not a directory", nil},
		{foreign, false, foreign + " is not a cowfs store: ...", local.ErrFormat},
		{held, false, fmt.Sprintf("store %s is already open in this process (pid %d)", held, os.Getpid()), store.ErrInUse},
	}
	for _, tc := range tests {
		st, err := Open(t.Context(), tc.spec, &Options{MustExist: tc.mustExist})
		if err == nil {
			st.Close()
			t.Errorf("Open(%q): no error, want %q", tc.spec, tc.want)
			continue
		}
		msg := err.Error()
		if prefix, ok := strings.CutSuffix(tc.want, "..."); ok {
			if !strings.HasPrefix(msg, prefix) {
				t.Errorf("Open(%q): %q, want it to start with %q", tc.spec, msg, prefix)
			}
		} else if msg != tc.want {
			t.Errorf("Open(%q): %q, want %q", tc.spec, msg, tc.want)
		}
		if tc.is != nil && !errors.Is(err, tc.is) {
			t.Errorf("Open(%q): %v does not wrap %q", tc.spec, err, tc.is)
		}
		if tc.is != nil && strings.Contains(msg, tc.is.Error()) {
			t.Errorf("Open(%q): %q repeats %q", tc.spec, msg, tc.is)
		}
	}
	if _, err := os.Stat(missing); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Open with MustExist created %s: %v", missing, err)
	}
}

// TestDefault: the default store is $COWFS_STORE (any spec), else a
// directory under $XDG_DATA_HOME (if absolute), else under $HOME.
func TestDefault(t *testing.T) {
	tests := []struct {
		env  map[string]string
		want string // "" for an error
	}{
		{map[string]string{"COWFS_STORE": "/s", "XDG_DATA_HOME": "/x", "HOME": "/h"}, "/s"},
		{map[string]string{"COWFS_STORE": "mem:", "HOME": "/h"}, "mem:"},
		{map[string]string{"XDG_DATA_HOME": "/x", "HOME": "/h"}, "/x/cowfs"},
		{map[string]string{"XDG_DATA_HOME": "relative", "HOME": "/h"}, "/h/.local/share/cowfs"},
		{map[string]string{"HOME": "/h"}, "/h/.local/share/cowfs"},
		{map[string]string{"HOME": "/root"}, "/root/.local/share/cowfs"},
		{map[string]string{"XDG_DATA_HOME": "relative"}, ""},
		{map[string]string{}, ""},
	}
	for _, tc := range tests {
		got, err := Default(func(k string) string { return tc.env[k] })
		switch {
		case tc.want == "" && err == nil:
			t.Errorf("env %v: got %q, want an error", tc.env, got)
		case tc.want != "" && (err != nil || got != tc.want):
			t.Errorf("env %v: got %q, %v, want %q", tc.env, got, err, tc.want)
		}
	}
}

// TestBackends: every kind of store is reachable by its specs: one
// backend takes directories, the others each a kind of its own that
// parses as one, and help has a form and a line for each.
func TestBackends(t *testing.T) {
	kinds := map[string]bool{}
	for _, b := range Backends() {
		if kinds[b.Kind] {
			t.Errorf("kind %q registered twice", b.Kind)
		}
		kinds[b.Kind] = true
		if b.Kind != "" && (!isKind(b.Kind) || !strings.HasPrefix(b.Form, b.Kind+":")) {
			t.Errorf("backend %q: not a kind a spec can name, or its form %q does not start with it", b.Kind, b.Form)
		}
		if b.Form == "" || b.Doc == "" || b.Open == nil {
			t.Errorf("backend %q: form %q, doc %q, open set %v; want all three", b.Kind, b.Form, b.Doc, b.Open != nil)
		}
	}
	if !kinds[""] {
		t.Error("no backend takes directories")
	}
}
