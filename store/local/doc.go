// Package local is the embedded, durable store.Store: blob bytes in
// append-only segment files, and everything else (where each blob is, its
// reference count, the roots) in one bbolt index. It is the default backend
// of a cowfs on one machine.
//
// # On-disk format (version 1)
//
// A store is a directory:
//
//	DIR/LOCK               flock(2)ed while a process has the store open; holds its pid
//	DIR/index.db           bbolt database: the index (below)
//	DIR/segments/NNNNNNNN  segment files, NNNNNNNN the segment number in decimal
//
// A segment file starts with a 16-byte header ("cowfsSEG", a big-endian
// uint32 format version, 4 zero bytes) followed by blob records, each a
// 48-byte header ("cwb1", 4 zero bytes, the big-endian uint64 size, the
// 32-byte ID) and then the blob's bytes. Records are only ever appended; a
// deleted blob's bytes are given back to the file system by punching a hole
// over them, and a segment whose live bytes fall below a quarter of its size
// is compacted (its live blobs copied to the current segment, then the file
// removed). The index alone says which records are live: bytes the index does
// not point at are garbage. The per-record headers make a segment
// self-describing, so a salvage tool can find every blob in it without the
// index.
//
// index.db has five buckets, all integers big-endian:
//
//	meta      "format" -> "cowfs local store", "version" -> uint32 (1),
//	          "blobs" -> uint64 number of indexed blobs, "bytes" -> uint64 sum of their sizes
//	blobs     ID (32 bytes) -> segment uint32, data offset uint64, size uint64, count uint64
//	extents   segment uint32, data offset uint64 -> ID   (the blobs of a segment, in file order)
//	segments  segment uint32 -> live uint64, end uint64
//	roots     root name -> ID
//
// "live" is the number of bytes (headers included) of the segment's indexed
// blobs; "end" is the highest end of any record ever indexed in it. The
// extents bucket lets a compaction find a segment's live blobs without
// scanning the whole index. A store whose meta names another format or a
// version this package does not know is refused (ErrFormat).
//
// # Durability and crash safety
//
// Put appends the record to the current segment and remembers its location
// in memory: the blob is pending. Pending blobs are readable but not durable.
// Commit validates the batch, then, if it names pending blobs, fdatasyncs
// every segment written since the last sync (and the segments directory if a
// segment file was created), then runs one bbolt read-write transaction that
// indexes the named pending blobs and applies all count changes, root swaps
// and deletions. bbolt commits by writing the new pages of its copy-on-write
// B+tree, fdatasyncing, then writing one of its two checksummed meta pages and
// fdatasyncing again. Commit returns after that, so everything a returned
// Commit applied is on disk.
//
// A crash at any instant therefore leaves the state of the last transaction
// whose meta page reached the disk, i.e. either the state before a Commit or
// the state after it, never a mix:
//
//   - Before the meta page is durable, the old meta page still describes a
//     complete old tree (bbolt never overwrites pages the last meta reaches),
//     and a torn new meta page fails its checksum. After it, the new tree is
//     complete because its pages were synced first.
//   - Every blob the index points at was synced before the transaction that
//     indexed it, so an indexed blob's bytes are on disk.
//   - Bytes appended after the last indexed end of a segment (pending blobs,
//     records being copied by a compaction) are garbage: Open truncates every
//     segment back to its recorded end. A segment file the index does not
//     know (created after the last commit, or compacted but not yet removed)
//     is deleted at Open.
//   - Space is given back only after the transaction that stopped referring
//     to it: a hole is punched over a deleted blob's whole blocks once the
//     deleting transaction committed; a compaction copies and syncs the live
//     blobs, re-points them in one transaction, and only then removes the old
//     file. A crash in between leaks space that a later compaction or Open
//     reclaims, and never loses a live byte.
//   - A new index is built as index.db.tmp and renamed into place, so an
//     index.db always holds a complete, formatted index.
//
// If an fsync fails, the page cache may have dropped the bytes it was to
// write, so the store stops taking writes (Put, Commit, Compact fail) until
// it is reopened; reads go on.
//
// # Damage
//
// Get and Verify read the whole blob and check its BLAKE3-256 against the
// ID before returning a byte; a mismatch, a short segment file or
// a missing one is an error wrapping store.ErrCorrupt that names the blob and
// the segment file. Such a store still opens: the other blobs, every count
// and every root are intact, and Verify lists the damaged blobs. Before bbolt
// maps index.db, Open checks that the file is as long as its newest valid
// meta page requires, so a truncated index is a clear error rather than a
// fault; a malformed index entry is an error wrapping store.ErrCorrupt, and
// faults and panics inside bbolt are turned into such errors (bbolt does not
// checksum its data pages, so damage inside them is found only where it
// breaks the structure).
//
// # Concurrency
//
// A Store is safe for concurrent use. One process at a time may open a store:
// Open takes an exclusive flock on DIR/LOCK and fails at once with ErrInUse if
// another holder has it. Commits and compactions are serialized; Puts append
// one at a time; reads run in parallel with everything.
//
// Pending blobs that no committed batch names do not survive Close or a
// crash: the engine names every blob it keeps in a batch.
package local
