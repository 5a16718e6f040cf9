// Package store defines where cowfs keeps its bytes: an immutable blob store
// named by content, a small table of named roots, and the atomic commit that
// ties them together.
//
// # Blobs
//
// A blob is an immutable byte string named by the BLAKE3-256 hash of its
// bytes (its ID). Put is idempotent: putting bytes that are already stored
// changes nothing and returns the same ID. Get returns bytes whose hash is the
// ID, or an error; a backend that keeps bytes outside process memory verifies
// the hash before returning them and reports a mismatch as an error wrapping
// ErrCorrupt that names the blob. Get never returns wrong bytes.
//
// There is no ranged read. An ID is the hash of the whole blob, so a part of
// a blob cannot be checked against it: a backend would have to read the
// whole blob to verify any byte of it (as the engine's cache does, keeping
// data blobs whole; see docs/design.md, "The cache"), or blobs would need a
// hash per chunk. Data blobs are at most 256 KiB (the chunker's largest
// cut), so a whole-blob Get costs little more than a ranged one would.
//
// Every blob carries a reference count: the number of references held on it by
// committed roots and by other committed blobs (tree nodes). A blob starts at
// count 0 when first Put; counts change only through Store.Commit. A blob
// whose count is 0 may be deleted by Commit (Batch.Delete) or by the owner of
// the store; the store never deletes a blob by itself. The store does not parse
// blobs: the engine above it knows which blobs reference which.
//
// # Roots
//
// A root is a name (a volume, a snapshot) bound to a blob ID. Roots change only
// by compare-and-swap inside Commit: a swap names the ID it expects the root to
// have now (the zero ID for "absent") and the ID it should have after (the zero
// ID to delete it). If any expectation of a batch fails, nothing of the batch
// is applied and Commit returns an error wrapping ErrConflict.
//
// # Commit
//
// Commit applies one Batch atomically: all count changes, all root swaps and
// all deletions, or none of them. Blobs a batch refers to must have been Put
// before. A durable backend makes the batch durable before Commit returns.
//
// # Ownership
//
// A store has one owner: one process holds it open, through one Store value
// (which any number of its goroutines may use), until Close. The contract
// relies on that. Count deltas are computed by the owner from the state it
// committed and what it holds in memory (which blobs it counted, which wait
// for deletion, which only its memory refers to); Commit checks only that
// counts stay in range, so a second writer's commits would silently make
// the counts wrong. A blob at count 0 may be deleted by the owner at any
// time, even while another process puts it again to refer to it. And a
// backend may keep state in the owner's memory only (the local store's
// pending blobs). So a backend refuses a second owner: opening a store that
// another process (or another Store value in this one) holds fails with an
// error wrapping ErrInUse. The local store does that with an flock(2) on
// its directory, and an in-memory store is reachable only through its Store
// value; a store shared over a network needs a lease for the same.
//
// # Optional capabilities
//
// A backend may also implement StatFSer (how much space it has) and
// Compacter (giving back the space of deleted blobs). Callers find them by
// a type assertion and do without those a store lacks.
//
// Every backend passes the conformance suites in package storetest.
package store

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"math"

	"lukechampine.com/blake3"
)

// IDSize is the length of a blob ID in bytes.
const IDSize = 32

// ID names a blob: the BLAKE3-256 hash of its bytes. The zero ID names no blob.
type ID [IDSize]byte

// Sum returns the ID of data.
func Sum(data []byte) ID { return ID(blake3.Sum256(data)) }

// IsZero reports whether id is the zero ID.
func (id ID) IsZero() bool { return id == ID{} }

// String returns the full hex form of id.
func (id ID) String() string { return hex.EncodeToString(id[:]) }

// Short returns the first 12 hex digits of id, for messages.
func (id ID) Short() string { return hex.EncodeToString(id[:6]) }

// ParseID parses the full hex form produced by String.
func ParseID(s string) (ID, error) {
	var id ID
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != IDSize {
		return id, fmt.Errorf("store: malformed blob id %q", s)
	}
	copy(id[:], b)
	return id, nil
}

// Errors reported by stores. Backends wrap them with detail; test with errors.Is.
var (
	// ErrNotFound: no blob with that ID, or no root with that name.
	ErrNotFound = errors.New("not found")
	// ErrConflict: a root swap's expectation did not hold; the batch was not applied.
	ErrConflict = errors.New("root changed concurrently")
	// ErrCorrupt: stored bytes do not match their ID.
	ErrCorrupt = errors.New("blob corrupt")
	// ErrInvalid: a malformed request (for example a count that would go negative,
	// or deleting a blob that is still referenced).
	ErrInvalid = errors.New("invalid request")
	// ErrClosed: the store was closed.
	ErrClosed = errors.New("store closed")
	// ErrInUse: opening a store that another owner holds (see Ownership).
	ErrInUse = errors.New("store is in use")
)

// BlobInfo describes a stored blob.
type BlobInfo struct {
	ID   ID
	Size int64
	Refs int64 // committed reference count
}

// Blobs is the content-addressed blob store.
type Blobs interface {
	// Put stores data and returns its ID. Idempotent; a new blob has count 0.
	// The store keeps its own copy: the caller may reuse data.
	Put(ctx context.Context, data []byte) (ID, error)
	// Get returns the whole blob. The caller must not modify the result.
	Get(ctx context.Context, id ID) ([]byte, error)
	// Stat returns the blob's size and committed count.
	Stat(ctx context.Context, id ID) (BlobInfo, error)
	// List calls fn for every stored blob, in no particular order, until fn
	// returns an error (which List returns). fn must not call the store.
	List(ctx context.Context, fn func(BlobInfo) error) error
}

// Roots is the table of named roots.
type Roots interface {
	// GetRoot returns the ID bound to name, or an error wrapping ErrNotFound.
	GetRoot(ctx context.Context, name string) (ID, error)
	// ListRoots returns every root, sorted by name.
	ListRoots(ctx context.Context) ([]Root, error)
}

// Root is a named root and the blob it is bound to.
type Root struct {
	Name string
	ID   ID
}

// RootSwap changes root Name from Old to New. A zero Old means the root must
// not exist; a zero New deletes it. A non-zero New must name a blob that exists
// and that the batch does not delete (ErrInvalid otherwise). A swap changes no
// count: the batch's Refs must account for the references roots hold.
type RootSwap struct {
	Name     string
	Old, New ID
}

// Batch is one atomic commit.
type Batch struct {
	// Refs adds each delta to the blob's count. Every blob named must exist
	// (ErrNotFound) and no count may go below zero or overflow (ErrInvalid).
	Refs map[ID]int64
	// Roots are compare-and-swap updates of named roots. Each name must be
	// valid (ValidRootName) and appear at most once (ErrInvalid otherwise).
	Roots []RootSwap
	// Delete removes blobs. Each must exist (ErrNotFound), appear at most once
	// and have count 0 after Refs is applied (ErrInvalid otherwise).
	Delete []ID
}

// Usage is the total the store holds.
type Usage struct {
	Blobs int64 // number of blobs
	Bytes int64 // sum of blob sizes
}

// Store is a complete backend: blobs, roots and atomic commits.
type Store interface {
	Blobs
	Roots
	// Commit applies b atomically (see the package documentation).
	Commit(ctx context.Context, b Batch) error
	// Usage reports how many blobs and bytes the store holds.
	Usage(ctx context.Context) (Usage, error)
	// Close releases the store. Calls after Close fail with ErrClosed.
	Close() error
}

// StatFS is the space a store has, in the terms of statfs(2): blocks of
// Frsize bytes and file nodes. For a local store it is the file system
// holding it, for an in-memory one the machine's memory; other users of
// that space change it at any time.
type StatFS struct {
	Bsize  uint32 // preferred I/O size in bytes
	Frsize uint32 // bytes per block of Blocks, Bfree and Bavail
	Blocks uint64 // total blocks
	Bfree  uint64 // free blocks
	Bavail uint64 // free blocks available to unprivileged users
	Files  uint64 // total file nodes
	Ffree  uint64 // free file nodes
}

// Avail returns the space available to unprivileged users in bytes (df's
// Avail), at most math.MaxInt64.
func (s StatFS) Avail() int64 {
	unit := uint64(s.Frsize)
	if unit == 0 {
		unit = uint64(s.Bsize)
	}
	if unit != 0 && s.Bavail > math.MaxInt64/unit {
		return math.MaxInt64
	}
	return int64(s.Bavail * unit)
}

// StatFSer is a store that can tell how much space it has; both backends
// of this module are. The frontends' statfs reports what StatFS returns (a
// store that cannot tell shows no blocks at all, as pseudo file systems
// do), and the engine refuses a fallocate that needs more than Avail
// (ENOSPC).
type StatFSer interface {
	// StatFS reports the store's space now.
	StatFS(ctx context.Context) (StatFS, error)
}

// Compacter is a store that holds on to some space of deleted blobs until
// it compacts its files (the local store, whose segment files are
// append-only). The engine's GC calls Compact after deleting what waits for
// deletion.
type Compacter interface {
	// Compact gives back what space of deleted blobs it can. Reads go on
	// meanwhile.
	Compact() error
}

// ValidRootName reports whether name may name a root: 1 to 255 bytes, no NUL
// and no '/'.
func ValidRootName(name string) bool {
	if len(name) == 0 || len(name) > 255 {
		return false
	}
	for i := 0; i < len(name); i++ {
		if name[i] == 0 || name[i] == '/' {
			return false
		}
	}
	return true
}
