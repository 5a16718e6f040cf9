package local

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime/debug"
	"time"

	"github.com/cowfs/cowfs/store"
	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

const (
	indexName    = "index.db"
	indexTmpName = "index.db.tmp"

	formatName    = "cowfs local store"
	formatVersion = 1
)

var (
	bucketMeta     = []byte("meta")
	bucketBlobs    = []byte("blobs")
	bucketExtents  = []byte("extents")
	bucketSegments = []byte("segments")
	bucketRoots    = []byte("roots")
	allBuckets     = [][]byte{bucketMeta, bucketBlobs, bucketExtents, bucketSegments, bucketRoots}

	keyFormat  = []byte("format")
	keyVersion = []byte("version")
	keyBlobs   = []byte("blobs")
	keyBytes   = []byte("bytes")
)

// blobRec is a blob's entry in the blobs bucket.
type blobRec struct {
	seg  uint32
	off  int64 // of the blob's bytes, after its record header
	size int64
	refs int64
}

const blobRecSize = 4 + 8 + 8 + 8

func (r blobRec) encode() []byte {
	b := make([]byte, blobRecSize)
	binary.BigEndian.PutUint32(b, r.seg)
	binary.BigEndian.PutUint64(b[4:], uint64(r.off))
	binary.BigEndian.PutUint64(b[12:], uint64(r.size))
	binary.BigEndian.PutUint64(b[20:], uint64(r.refs))
	return b
}

// decodeBlobRec decodes the entry of blob id, refusing values no version of
// this package writes.
func decodeBlobRec(id, v []byte) (blobRec, error) {
	if len(v) != blobRecSize {
		return blobRec{}, fmt.Errorf("blob %x: entry of %d bytes, want %d", id[:6], len(v), blobRecSize)
	}
	r := blobRec{
		seg:  binary.BigEndian.Uint32(v),
		off:  int64(binary.BigEndian.Uint64(v[4:])),
		size: int64(binary.BigEndian.Uint64(v[12:])),
		refs: int64(binary.BigEndian.Uint64(v[20:])),
	}
	if r.off < segHeaderSize+blobHeaderSize || r.size < 0 || r.refs < 0 || r.size > math.MaxInt64-r.off {
		return blobRec{}, fmt.Errorf("blob %x: malformed entry (segment %d, offset %d, size %d, count %d)", id[:6], r.seg, r.off, r.size, r.refs)
	}
	return r, nil
}

// segRec is a segment's entry in the segments bucket.
type segRec struct {
	live int64 // bytes of indexed records, headers included
	end  int64 // highest end of any record ever indexed in the segment
}

func (r segRec) encode() []byte {
	b := make([]byte, 16)
	binary.BigEndian.PutUint64(b, uint64(r.live))
	binary.BigEndian.PutUint64(b[8:], uint64(r.end))
	return b
}

func decodeSegRec(num uint32, v []byte) (segRec, error) {
	if len(v) != 16 {
		return segRec{}, fmt.Errorf("segment %d: entry of %d bytes, want 16", num, len(v))
	}
	r := segRec{live: int64(binary.BigEndian.Uint64(v)), end: int64(binary.BigEndian.Uint64(v[8:]))}
	if r.live < 0 || r.end < segHeaderSize || r.live > r.end {
		return segRec{}, fmt.Errorf("segment %d: malformed entry (live %d, end %d)", num, r.live, r.end)
	}
	return r, nil
}

func segKey(num uint32) []byte { return binary.BigEndian.AppendUint32(nil, num) }

func extKey(num uint32, off int64) []byte {
	return binary.BigEndian.AppendUint64(binary.BigEndian.AppendUint32(make([]byte, 0, 12), num), uint64(off))
}

func putUint64(b *bolt.Bucket, key []byte, v int64) error {
	return b.Put(key, binary.BigEndian.AppendUint64(nil, uint64(v)))
}

func getUint64(b *bolt.Bucket, key []byte) (int64, error) {
	v := b.Get(key)
	if len(v) != 8 || int64(binary.BigEndian.Uint64(v)) < 0 {
		return 0, fmt.Errorf("meta %q: malformed value %x", key, v)
	}
	return int64(binary.BigEndian.Uint64(v)), nil
}

// buckets are the buckets of one transaction.
type buckets struct {
	meta, blobs, extents, segments, roots *bolt.Bucket
}

func getBuckets(tx *bolt.Tx) (buckets, error) {
	bs := buckets{
		meta:     tx.Bucket(bucketMeta),
		blobs:    tx.Bucket(bucketBlobs),
		extents:  tx.Bucket(bucketExtents),
		segments: tx.Bucket(bucketSegments),
		roots:    tx.Bucket(bucketRoots),
	}
	if bs.meta == nil || bs.blobs == nil || bs.extents == nil || bs.segments == nil || bs.roots == nil {
		return bs, errors.New("a bucket is missing")
	}
	return bs, nil
}

// corruptIndex reports an index entry that cannot be right.
func (s *Store) corruptIndex(err error) error {
	return fmt.Errorf("local: %s: %w: %w", filepath.Join(s.dir, indexName), err, store.ErrCorrupt)
}

// view runs fn in a read transaction. A fault or panic inside bbolt (a
// damaged index) becomes an error.
func (s *Store) view(fn func(tx *bolt.Tx, bs buckets) error) error {
	return s.viewTx(func(tx *bolt.Tx) error {
		bs, err := getBuckets(tx)
		if err != nil {
			return s.corruptIndex(err)
		}
		return fn(tx, bs)
	})
}

// viewTx is view without the buckets.
func (s *Store) viewTx(fn func(tx *bolt.Tx) error) (err error) {
	defer s.recoverIndex(&err)
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	return s.db.View(fn)
}

// update runs fn in a read-write transaction and commits it. It reports
// whether a returned error came from fn (the transaction was rolled back
// and nothing was written) or from bbolt's commit.
func (s *Store) update(fn func(tx *bolt.Tx, bs buckets) error) (fromFn bool, err error) {
	defer s.recoverIndex(&err)
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	var fnErr error
	err = s.db.Update(func(tx *bolt.Tx) error {
		bs, err := getBuckets(tx)
		if err != nil {
			fnErr = s.corruptIndex(err)
		} else {
			fnErr = fn(tx, bs)
		}
		return fnErr
	})
	return err != nil && err == fnErr, err
}

// recoverIndex turns a panic inside bbolt into an error, and refuses further
// writes: bbolt's state is no longer known.
func (s *Store) recoverIndex(err *error) {
	if r := recover(); r != nil {
		*err = fmt.Errorf("local: %s is damaged (%v): %w", filepath.Join(s.dir, indexName), r, store.ErrCorrupt)
		s.fail(*err)
	}
}

// inspectDir reports whether dir holds an index, and refuses a directory
// that holds something other than a cowfs store.
func inspectDir(dir string) (hasIndex bool, err error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return false, fmt.Errorf("local: open store: %w", err)
	}
	foreign := ""
	segDirOK := true
	for _, e := range ents {
		switch e.Name() {
		case indexName:
			hasIndex = true
		case lockName, indexTmpName:
		case segDirName:
			segDirOK = e.IsDir()
		default:
			if foreign == "" {
				foreign = e.Name()
			}
		}
	}
	if hasIndex {
		return true, nil
	}
	if foreign != "" || !segDirOK {
		if foreign == "" {
			foreign = segDirName
		}
		return false, fmt.Errorf("local: %s is not a cowfs store: it holds %q and no %s: %w", dir, foreign, indexName, ErrFormat)
	}
	segs, err := os.ReadDir(filepath.Join(dir, segDirName))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return false, fmt.Errorf("local: open store: %w", err)
	}
	for _, e := range segs {
		if _, ok := parseSegName(e.Name()); ok {
			return false, fmt.Errorf("local: store %s has segment files but no %s: its index is lost, and opening it would discard them: %w",
				dir, indexName, store.ErrCorrupt)
		}
	}
	return false, nil
}

// boltOptions are the options index.db is opened with.
func boltOptions() *bolt.Options {
	return &bolt.Options{
		// The LOCK file already keeps other cowfs processes out; this only
		// bounds the wait for some other program holding index.db.
		Timeout:      100 * time.Millisecond,
		FreelistType: bolt.FreelistMapType,
	}
}

// createIndex makes an empty, formatted index. It is built under a temporary
// name and renamed into place, so index.db, once there, is always complete.
func createIndex(dir string) error {
	if err := os.MkdirAll(filepath.Join(dir, segDirName), 0o700); err != nil {
		return fmt.Errorf("local: create store: %w", err)
	}
	tmp := filepath.Join(dir, indexTmpName)
	if err := os.Remove(tmp); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("local: create store: %w", err)
	}
	db, err := bolt.Open(tmp, 0o600, boltOptions())
	if err != nil {
		return fmt.Errorf("local: create %s: %w", tmp, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, name := range allBuckets {
			if _, err := tx.CreateBucket(name); err != nil {
				return err
			}
		}
		meta := tx.Bucket(bucketMeta)
		return errors.Join(
			meta.Put(keyFormat, []byte(formatName)),
			meta.Put(keyVersion, binary.BigEndian.AppendUint32(nil, formatVersion)),
			putUint64(meta, keyBlobs, 0),
			putUint64(meta, keyBytes, 0))
	})
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(dir, indexName))
	}
	if err == nil {
		err = syncDir(dir)
	}
	if err != nil {
		return fmt.Errorf("local: create store index: %w", err)
	}
	return nil
}

// openIndex opens index.db after checking that bbolt can map it safely.
func openIndex(dir string) (db *bolt.DB, err error) {
	path := filepath.Join(dir, indexName)
	if err := checkIndexFile(path); err != nil {
		return nil, fmt.Errorf("local: %s is damaged: %w: %w", path, err, store.ErrCorrupt)
	}
	defer func() {
		if r := recover(); r != nil {
			db, err = nil, fmt.Errorf("local: %s is damaged (%v): %w", path, r, store.ErrCorrupt)
		}
	}()
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	db, err = bolt.Open(path, 0o600, boltOptions())
	switch {
	case err == nil:
		return db, nil
	case errors.Is(err, berrors.ErrTimeout):
		return nil, fmt.Errorf("local: %s is locked by another process: %w", path, ErrInUse)
	case errors.Is(err, berrors.ErrInvalid), errors.Is(err, berrors.ErrChecksum), errors.Is(err, berrors.ErrVersionMismatch):
		return nil, fmt.Errorf("local: %s is damaged: %w: %w", path, err, store.ErrCorrupt)
	default:
		return nil, fmt.Errorf("local: open %s: %w", path, err)
	}
}

// checkFormat refuses an index that is not a cowfs store's or is of another
// format version.
func (s *Store) checkFormat() error {
	path := filepath.Join(s.dir, indexName)
	var version uint32
	err := s.viewTx(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		if meta == nil {
			return fmt.Errorf("local: %s is not a cowfs store index (no meta bucket): %w", path, ErrFormat)
		}
		if f := meta.Get(keyFormat); !bytes.Equal(f, []byte(formatName)) {
			return fmt.Errorf("local: %s is not a cowfs store index (format %q): %w", path, f, ErrFormat)
		}
		v := meta.Get(keyVersion)
		if len(v) != 4 {
			return fmt.Errorf("local: %s: malformed format version %x: %w", path, v, store.ErrCorrupt)
		}
		version = binary.BigEndian.Uint32(v)
		return nil
	})
	if err != nil {
		return err
	}
	switch {
	case version > formatVersion:
		return fmt.Errorf("local: store %s has format version %d, newer than this cowfs reads (%d): %w", s.dir, version, formatVersion, ErrFormat)
	case version != formatVersion:
		return fmt.Errorf("local: store %s has unknown format version %d (this cowfs reads %d): %w", s.dir, version, formatVersion, ErrFormat)
	}
	return s.view(func(*bolt.Tx, buckets) error { return nil }) // every bucket is there
}

// checkIndexFile checks, before bbolt maps index.db, that the file holds a
// valid meta page and every page that meta page's tree can reach (bbolt
// itself would fault on a page past the end of a truncated file).
func checkIndexFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	size := fi.Size()
	if size == 0 {
		return errors.New("the file is empty")
	}
	readMeta := func(off int64) (boltMeta, bool) {
		var buf [boltPageHeader + boltMetaSize]byte
		if _, err := f.ReadAt(buf[:], off); err != nil && err != io.EOF {
			return boltMeta{}, false
		} else if off+int64(len(buf)) > size {
			return boltMeta{}, false
		}
		m := parseBoltMeta(buf[boltPageHeader:])
		return m, m.valid()
	}
	// Find the page size as bbolt does: from meta 0, else from meta 1.
	var pageSize int64
	if m, ok := readMeta(0); ok {
		pageSize = int64(m.pageSize)
	} else {
		for i := range 15 {
			ps := int64(1024) << i
			if m, ok := readMeta(ps); ok && int64(m.pageSize) == ps {
				pageSize = ps
				break
			}
		}
	}
	if pageSize < 512 || pageSize > 1<<24 || pageSize&(pageSize-1) != 0 {
		return errors.New("neither meta page is valid")
	}
	if size < 2*pageSize {
		return fmt.Errorf("the file is truncated to %d bytes, shorter than its two meta pages", size)
	}
	m0, ok0 := readMeta(0)
	m1, ok1 := readMeta(pageSize)
	m := m0
	if !ok0 || (ok1 && m1.txid > m0.txid) {
		m = m1
	}
	if !ok0 && !ok1 {
		return errors.New("neither meta page is valid")
	}
	if m.pgid > uint64(math.MaxInt64/pageSize) || m.pgid < 3 {
		return fmt.Errorf("meta page names %d pages", m.pgid)
	}
	if need := int64(m.pgid) * pageSize; size < need {
		return fmt.Errorf("the file is truncated to %d bytes; its last commit (transaction %d) needs %d", size, m.txid, need)
	}
	if m.root >= m.pgid || (m.freelist >= m.pgid && m.freelist != math.MaxUint64) {
		return fmt.Errorf("meta page points past its %d pages", m.pgid)
	}
	return nil
}

// The parts of bbolt's file format (version 2) that checkIndexFile reads: a
// 16-byte page header, then the meta, in the machine's byte order, ending in
// an FNV-64a checksum of the fields before it.
const (
	boltPageHeader = 16
	boltMetaSize   = 64
	boltMagic      = 0xED0CDAED
	boltVersion    = 2
)

type boltMeta struct {
	magic, version, pageSize   uint32
	root, freelist, pgid, txid uint64
	checksum, computedChecksum uint64
}

func parseBoltMeta(b []byte) boltMeta {
	ne := binary.NativeEndian
	h := fnv.New64a()
	h.Write(b[:56])
	return boltMeta{
		magic:            ne.Uint32(b[0:]),
		version:          ne.Uint32(b[4:]),
		pageSize:         ne.Uint32(b[8:]),
		root:             ne.Uint64(b[16:]),
		freelist:         ne.Uint64(b[32:]),
		pgid:             ne.Uint64(b[40:]),
		txid:             ne.Uint64(b[48:]),
		checksum:         ne.Uint64(b[56:]),
		computedChecksum: h.Sum64(),
	}
}

func (m boltMeta) valid() bool {
	return m.magic == boltMagic && m.version == boltVersion && m.checksum == m.computedChecksum
}

// syncDir fsyncs directory dir, making the creation, removal or renaming of
// its entries durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}
