package btree

// Node kinds: the kind byte of the header every cowfs node blob starts with
// (PutHeader), which tells the reader which decoder parses the rest. Every
// kind cowfs stores is defined here, so no two kinds share a tag; a tag
// never changes meaning, since stored blobs carry it.
const (
	// KindRope is a node of a file's rope of extents (package rope).
	KindRope = 1
	// KindDir is a node of a directory's tree of entries (package dirtree).
	KindDir = 2
	// KindVolume is a volume node: a volume's or snapshot's root entry,
	// side tables and counters (package cowfs, volnode.go). It is not a
	// B-tree node; it shares only the header.
	KindVolume = 3
	// KindZombie is a node of the list of blobs waiting for deletion
	// (package cowfs, zombies.go).
	KindZombie = 4
)
