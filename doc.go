// Package cowfs is a copy-on-write file system served as a Go library.
//
// Copies cost metadata, not bytes: cloning a file or a whole directory tree is
// O(1); copying any byte range of one file into another at any offsets shares
// the data in O(log n); identical data written twice is stored once.
//
// An FS is an opened store (see package store and its backends). It holds
// volumes: writable trees of directories and files, each a named root in the
// store. A volume can be snapshotted (a read-only, O(1) copy) and cloned into
// a new writable volume (also O(1)).
//
// Everything a volume holds is one persistent tree: the volume node
// points at the root directory's B-tree of entries; an entry of a directory
// points at that directory's tree, an entry of a file at the file's rope of
// extents. Nodes are immutable blobs named by their hash, shared by every
// tree that contains them, and loaded on demand.
//
// Changes live in memory until Commit writes the new nodes, swaps the
// volumes' roots and adjusts reference counts, atomically. Sync of a file
// commits. Commit is FS-wide: every dirty volume goes into one batch, so no
// in-memory reference to a blob is ever lost to another volume's commit.
//
// Paths are slash-separated and relative to the volume root ("a/b" and "/a/b"
// name the same file). All methods are safe for concurrent use.
package cowfs
