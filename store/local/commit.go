package local

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"syscall"

	"github.com/cowfs/cowfs/store"
	bolt "go.etcd.io/bbolt"
)

// GetRoot returns the ID bound to name.
func (s *Store) GetRoot(ctx context.Context, name string) (store.ID, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if err := s.usable(false); err != nil {
		return store.ID{}, err
	}
	var id store.ID
	found := false
	err := s.view(func(_ *bolt.Tx, bs buckets) error {
		v := bs.roots.Get([]byte(name))
		if v == nil {
			return nil
		}
		if len(v) != store.IDSize {
			return s.corruptIndex(fmt.Errorf("root %q: value of %d bytes", name, len(v)))
		}
		id, found = store.ID(v), true
		return nil
	})
	if err == nil && !found {
		err = fmt.Errorf("local: root %q: %w", name, store.ErrNotFound)
	}
	return id, err
}

// ListRoots returns every root, sorted by name.
func (s *Store) ListRoots(ctx context.Context) ([]store.Root, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if err := s.usable(false); err != nil {
		return nil, err
	}
	var roots []store.Root
	err := s.view(func(_ *bolt.Tx, bs buckets) error {
		return bs.roots.ForEach(func(k, v []byte) error {
			if len(v) != store.IDSize {
				return s.corruptIndex(fmt.Errorf("root %q: value of %d bytes", k, len(v)))
			}
			roots = append(roots, store.Root{Name: string(k), ID: store.ID(v)})
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	if roots == nil {
		roots = []store.Root{}
	}
	return roots, nil
}

// blobState is what a commit knows of a blob the batch names.
type blobState struct {
	rec     blobRec      // if indexed
	pending *pendingBlob // if not
	refs    int64        // count after the batch's delta
}

// commitResult is what a commit leaves to do after its transaction.
type commitResult struct {
	indexed  map[store.ID]*pendingBlob // pending blobs the commit indexed
	dropped  map[store.ID]*pendingBlob // pending blobs the commit deleted
	punch    []extent                  // records of deleted blobs
	deletion bool
}

// extent is a record in a segment file: header and bytes.
type extent struct {
	seg      uint32
	off, len int64
}

// Commit applies b atomically and durably: it validates the whole batch
// (nothing is applied if any of it is wrong), syncs the segment files that
// hold the pending blobs it names, and applies everything in one index
// transaction. The space of deleted blobs is given back after that.
func (s *Store) Commit(ctx context.Context, b store.Batch) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.commitMu.Lock()
	defer s.commitMu.Unlock()

	// The pending blobs the batch names. Only commits remove pending blobs,
	// so this stays true until the transaction is done.
	s.mu.RLock()
	if err := s.usable(true); err != nil {
		s.mu.RUnlock()
		return err
	}
	named := make(map[store.ID]*pendingBlob)
	note := func(id store.ID) {
		if p := s.pending[id]; p != nil {
			named[id] = p
		}
	}
	for id := range b.Refs {
		note(id)
	}
	for _, id := range b.Delete {
		note(id)
	}
	for _, sw := range b.Roots {
		note(sw.New)
	}
	// What a sync must cover if the batch indexes any of them: every segment
	// write so far, so also the writes of the named blobs.
	var plan syncPlan
	if len(named) > 0 {
		plan = s.planSync()
	}
	s.mu.RUnlock()
	if len(b.Refs) == 0 && len(b.Roots) == 0 && len(b.Delete) == 0 {
		return nil
	}

	res := commitResult{indexed: make(map[store.ID]*pendingBlob), dropped: make(map[store.ID]*pendingBlob)}
	fromFn, err := s.update(func(_ *bolt.Tx, bs buckets) error {
		return s.apply(bs, b, named, plan, &res)
	})
	if err != nil {
		if !fromFn && !errors.Is(err, syscall.ENOSPC) {
			// The index's commit failed for a reason other than space: what is
			// on disk is no longer certain.
			s.fail(err)
		}
		if !fromFn {
			err = fmt.Errorf("local: commit: %w", err)
		}
		return err
	}

	s.mu.Lock()
	for _, m := range []map[store.ID]*pendingBlob{res.indexed, res.dropped} {
		for id, p := range m {
			if s.pending[id] == p {
				delete(s.pending, id)
				p.seg.pending--
			}
		}
	}
	// Segments are removed only under commitMu, which this holds.
	punch := make([]*segment, len(res.punch))
	for i, e := range res.punch {
		punch[i] = s.segs[e.seg]
	}
	s.mu.Unlock()
	for i, e := range res.punch {
		if g := punch[i]; g != nil {
			g.punch(e.off, e.len)
		}
	}
	if res.deletion && !s.opt.NoAutoCompact {
		s.nudge()
	}
	return nil
}

// apply validates b against the index (store.CheckBatch) and applies it in
// the transaction of bs.
func (s *Store) apply(bs buckets, b store.Batch, named map[store.ID]*pendingBlob, plan syncPlan, res *commitResult) error {
	blobs := make(map[store.ID]*blobState)
	// blob finds a blob the batch names, remembering what it found in
	// blobs for the rest of the commit.
	blob := func(id store.ID) (int64, bool, error) {
		if st := blobs[id]; st != nil {
			return st.refs, true, nil
		}
		st := &blobState{}
		if v := bs.blobs.Get(id[:]); v != nil {
			r, err := decodeBlobRec(id[:], v)
			if err != nil {
				return 0, false, s.corruptIndex(err)
			}
			st.rec, st.refs = r, r.refs
		} else if p := named[id]; p != nil {
			st.pending = p
		} else {
			return 0, false, nil
		}
		blobs[id] = st
		return st.refs, true, nil
	}
	root := func(name string) (store.ID, error) {
		v := bs.roots.Get([]byte(name))
		if v == nil {
			return store.ID{}, nil
		}
		if len(v) != store.IDSize {
			return store.ID{}, s.corruptIndex(fmt.Errorf("root %q: value of %d bytes", name, len(v)))
		}
		return store.ID(v), nil
	}
	if err := store.CheckBatch("local", b, blob, root); err != nil {
		return err
	}
	deleted := make(map[store.ID]bool, len(b.Delete))
	for _, id := range b.Delete {
		deleted[id] = true
	}

	// Everything holds: apply.
	nBlobs, err := getUint64(bs.meta, keyBlobs)
	if err != nil {
		return s.corruptIndex(err)
	}
	nBytes, err := getUint64(bs.meta, keyBytes)
	if err != nil {
		return s.corruptIndex(err)
	}
	segRecs := s.segRecs(bs)

	for id, d := range b.Refs {
		blobs[id].refs += d
	}
	// Index the pending blobs the batch keeps. Their bytes must be on disk
	// before the transaction that points at them commits.
	var index []store.ID
	for id, st := range blobs {
		if st.pending != nil && !deleted[id] {
			index = append(index, id)
		}
	}
	if len(index) > 0 {
		if err := s.sync(plan); err != nil {
			return err
		}
	}
	slices.SortFunc(index, func(a, b store.ID) int { return compareIDs(a, b) })
	for _, id := range index {
		st := blobs[id]
		p := st.pending
		st.rec = blobRec{seg: p.seg.num, off: p.off, size: p.size}
		if err := bs.extents.Put(extKey(p.seg.num, p.off), id[:]); err != nil {
			return err
		}
		sr, err := segRecs.get(p.seg.num)
		if err != nil {
			return err
		}
		sr.live += blobHeaderSize + p.size
		sr.end = max(sr.end, p.off+p.size)
		nBlobs++
		nBytes += p.size
		res.indexed[id] = p
	}
	for id, st := range blobs {
		if deleted[id] || (st.pending != nil && res.indexed[id] == nil) {
			continue
		}
		st.rec.refs = st.refs
		if err := bs.blobs.Put(id[:], st.rec.encode()); err != nil {
			return err
		}
	}
	for _, id := range b.Delete {
		st := blobs[id]
		res.deletion = true
		if p := st.pending; p != nil {
			res.dropped[id] = p
			res.punch = append(res.punch, extent{p.seg.num, p.off - blobHeaderSize, blobHeaderSize + p.size})
			continue
		}
		r := st.rec
		if err := bs.blobs.Delete(id[:]); err != nil {
			return err
		}
		if err := bs.extents.Delete(extKey(r.seg, r.off)); err != nil {
			return err
		}
		sr, err := segRecs.get(r.seg)
		if err != nil {
			return err
		}
		sr.live -= blobHeaderSize + r.size
		if sr.live < 0 {
			return s.corruptIndex(fmt.Errorf("segment %d: live bytes below zero after deleting blob %s", r.seg, id))
		}
		nBlobs--
		nBytes -= r.size
		res.punch = append(res.punch, extent{r.seg, r.off - blobHeaderSize, blobHeaderSize + r.size})
	}
	if err := segRecs.flush(); err != nil {
		return err
	}
	for _, sw := range b.Roots {
		var err error
		if sw.New.IsZero() {
			err = bs.roots.Delete([]byte(sw.Name))
		} else if sw.New != sw.Old {
			err = bs.roots.Put([]byte(sw.Name), sw.New[:])
		}
		if err != nil {
			return err
		}
	}
	if nBlobs < 0 || nBytes < 0 {
		return s.corruptIndex(errors.New("blob totals below zero"))
	}
	if err := putUint64(bs.meta, keyBlobs, nBlobs); err != nil {
		return err
	}
	return putUint64(bs.meta, keyBytes, nBytes)
}

func compareIDs(a, b store.ID) int {
	for i := range a {
		if a[i] != b[i] {
			return int(a[i]) - int(b[i])
		}
	}
	return 0
}

// segRecCache holds the segment entries a transaction changes.
type segRecCache struct {
	s *Store
	b *bolt.Bucket
	m map[uint32]*segRec
}

func (s *Store) segRecs(bs buckets) *segRecCache {
	return &segRecCache{s: s, b: bs.segments, m: make(map[uint32]*segRec)}
}

// get returns segment num's entry, a new one if it has none yet.
func (c *segRecCache) get(num uint32) (*segRec, error) {
	if r := c.m[num]; r != nil {
		return r, nil
	}
	r := &segRec{end: segHeaderSize}
	if v := c.b.Get(segKey(num)); v != nil {
		dr, err := decodeSegRec(num, v)
		if err != nil {
			return nil, c.s.corruptIndex(err)
		}
		*r = dr
	}
	c.m[num] = r
	return r, nil
}

// flush writes the changed entries back.
func (c *segRecCache) flush() error {
	for num, r := range c.m {
		if err := c.b.Put(segKey(num), r.encode()); err != nil {
			return err
		}
	}
	return nil
}

// syncPlan is the segment writes (and creations) that a sync must make
// durable.
type syncPlan struct {
	segs   []*segment
	gens   []uint64
	dirGen uint64
}

// planSync lists every segment write so far; the caller holds s.mu.
func (s *Store) planSync() syncPlan {
	var p syncPlan
	for _, g := range s.segs {
		if w := g.written.Load(); w > g.synced {
			p.segs = append(p.segs, g)
			p.gens = append(p.gens, w)
		}
	}
	p.dirGen = s.dirGen.Load()
	return p
}

// syncSegments makes every segment write so far durable. The caller holds
// s.commitMu.
func (s *Store) syncSegments() error {
	s.mu.RLock()
	p := s.planSync()
	s.mu.RUnlock()
	return s.sync(p)
}

// sync carries out p; the caller holds s.commitMu. A failed sync leaves the
// store failed: after a failed fsync the page cache may have dropped the
// bytes, so nothing written since can be trusted until the store is
// reopened.
func (s *Store) sync(p syncPlan) error {
	for i, g := range p.segs {
		if p.gens[i] <= g.synced {
			continue
		}
		if err := g.sync(); err != nil {
			s.fail(err)
			return err
		}
		g.synced = p.gens[i]
	}
	if p.dirGen > s.dirSynced {
		if err := syncDir(s.segDir); err != nil {
			err = fmt.Errorf("local: sync %s: %w", s.segDir, err)
			s.fail(err)
			return err
		}
		s.dirSynced = p.dirGen
	}
	return nil
}
