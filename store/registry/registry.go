// Package registry opens a store named by a spec, a string, so that no
// frontend or command knows the kinds of store there are. A spec is:
//
//	mem:   an in-memory store (store/mem), empty when opened, gone when closed
//	DIR    the local store (store/local) kept in directory DIR
//
// A spec that starts with KIND: (KIND two or more ASCII letters and
// digits, the first a letter) names a kind of store, and one of no known
// kind is refused (ErrSpec); every other spec is a directory. A relative
// directory whose name starts like a kind is given as ./NAME.
//
// Adding a kind of store is adding one Backend to the list backends.
package registry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/cowfs/cowfs/store"
	"github.com/cowfs/cowfs/store/local"
	"github.com/cowfs/cowfs/store/mem"
)

// Options tune Open. The zero value (or a nil *Options) is the default.
type Options struct {
	// MustExist refuses to create a store: Open fails with an error
	// wrapping ErrNoStore when the spec names none yet, for those who only
	// inspect or maintain a store. (A mem: store always exists: every Open
	// makes an empty one.)
	MustExist bool
	// Logger receives what the store logs (the local store: errors of
	// background compaction); nil discards.
	Logger *slog.Logger
}

// Errors of Open besides those of the backends (which wrap, for example,
// store.ErrInUse). Test with errors.Is; the message of an error wrapping
// them says what is wrong without their text.
var (
	// ErrSpec: a spec of no known kind, or one its backend cannot parse.
	ErrSpec = errors.New("bad store spec")
	// ErrNoStore: Options.MustExist was set and the spec names no store.
	ErrNoStore = errors.New("no such store")
)

// Backend is a kind of store.
type Backend struct {
	// Kind is the KIND of its specs, as "mem"; "" for the backend of the
	// specs that name no kind (directories).
	Kind string
	// Form is how its specs look, for help: "mem:", "DIR".
	Form string
	// Doc says in a line what the store is, for help.
	Doc string
	// Open opens the store at location, what follows "KIND:" in the spec
	// (the whole spec for Kind ""). Its errors read well on their own: a
	// command prints them as they are.
	Open func(ctx context.Context, location string, opt Options) (store.Store, error)
}

// backends lists every kind of store, in the order help shows them.
var backends = []Backend{
	{Kind: "", Form: "DIR", Doc: "the local store in directory DIR (durable; one process at a time)", Open: openLocal},
	{Kind: "mem", Form: "mem:", Doc: "an in-memory store; nothing outlives the process", Open: openMem},
}

// Backends returns every kind of store, in the order help shows them.
func Backends() []Backend { return slices.Clone(backends) }

// Open opens the store spec names (see the package documentation).
func Open(ctx context.Context, spec string, opt *Options) (store.Store, error) {
	var o Options
	if opt != nil {
		o = *opt
	}
	b, location, err := find(spec)
	if err != nil {
		return nil, err
	}
	return b.Open(ctx, location, o)
}

// find returns the backend of spec and the location it names.
func find(spec string) (*Backend, string, error) {
	if spec == "" {
		return nil, "", &openError{"empty store spec", ErrSpec}
	}
	kind, location, ok := strings.Cut(spec, ":")
	if !ok || !isKind(kind) {
		kind, location = "", spec
	}
	for i := range backends {
		if backends[i].Kind == kind {
			return &backends[i], location, nil
		}
	}
	forms := make([]string, len(backends))
	for i, b := range backends {
		forms[i] = b.Form
		if b.Kind == "" {
			forms[i] = "a directory"
		}
	}
	list := strings.Join(forms[:len(forms)-1], ", ") + " or " + forms[len(forms)-1]
	return nil, "", &openError{fmt.Sprintf("unknown store %q (a store is %s)", spec, list), ErrSpec}
}

// isKind reports whether s could name a kind of store ("mem", "s3"):
// ASCII letters and digits, the first a letter, and at least two of them,
// so that no drive-letter-like path ("C:...") is taken for one.
func isKind(s string) bool {
	if len(s) < 2 {
		return false
	}
	for i, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z':
		case i > 0 && r >= '0' && r <= '9':
		default:
			return false
		}
	}
	return true
}

// Default returns the spec of the default store: $COWFS_STORE (any spec),
// else the local store in $XDG_DATA_HOME/cowfs, else in
// $HOME/.local/share/cowfs. An XDG_DATA_HOME that is not an absolute path
// is ignored, as the XDG base directory specification asks. getenv is
// os.Getenv outside tests.
func Default(getenv func(string) string) (string, error) {
	if spec := getenv("COWFS_STORE"); spec != "" {
		return spec, nil
	}
	if xdg := getenv("XDG_DATA_HOME"); xdg != "" && filepath.IsAbs(xdg) {
		return filepath.Join(xdg, "cowfs"), nil
	}
	if home := getenv("HOME"); home != "" {
		return filepath.Join(home, ".local", "share", "cowfs"), nil
	}
	return "", errors.New("no default store: set $COWFS_STORE, $XDG_DATA_HOME or $HOME")
}

// openError is an error whose message says what is wrong once: errors.Is
// and errors.As find err (a sentinel, or the backend's error, and what that
// wraps) without its text in the message.
type openError struct {
	msg string
	err error
}

func (e *openError) Error() string { return e.msg }
func (e *openError) Unwrap() error { return e.err }

// openMem opens a new in-memory store; it takes no location.
func openMem(_ context.Context, location string, _ Options) (store.Store, error) {
	if location != "" {
		return nil, &openError{fmt.Sprintf("the mem store takes no location, got %q", "mem:"+location), ErrSpec}
	}
	return mem.New(), nil
}

// openLocal opens the local store in dir. Its errors for a store in use or
// a directory that is no store say so once, without local's prefix and
// sentinel: "store DIR is in use by another process (pid N)".
func openLocal(_ context.Context, dir string, opt Options) (store.Store, error) {
	if opt.MustExist {
		fi, err := os.Stat(dir)
		switch {
		case errors.Is(err, os.ErrNotExist):
			return nil, &openError{"no store at " + dir, ErrNoStore}
		case err != nil:
			return nil, err
		case !fi.IsDir():
			return nil, fmt.Errorf("store %s is not a directory", dir)
		}
	}
	st, err := local.Open(dir, &local.Options{Logger: opt.Logger})
	if err == nil {
		return st, nil
	}
	for _, sentinel := range []error{local.ErrInUse, local.ErrFormat} {
		if errors.Is(err, sentinel) {
			msg := strings.TrimPrefix(err.Error(), "local: ")
			return nil, &openError{strings.TrimSuffix(msg, ": "+sentinel.Error()), err}
		}
	}
	return nil, err
}
