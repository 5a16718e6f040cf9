package cowfs

import (
	"context"
	"errors"
	"fmt"

	"github.com/cowfs/cowfs/internal/btree"
	"github.com/cowfs/cowfs/store"
)

// Reference counting (Rodeh, "B-trees, shadowing, and clones"): a blob's count
// is the number of pointers to it from committed nodes and roots. Counts
// change only at commit, and lazily:
//
//   - a node built in memory and committed for the first time takes one
//     reference on each of its children (materialize); a node whose bytes are
//     already stored with a count above zero just gains one reference, since
//     its children are counted already;
//   - a root that is replaced or deleted drops one reference on its old blob;
//     a blob whose count reaches zero is deleted and drops one reference on
//     each of its children, and so on down (release).
//
// Materializing first and releasing second means a subtree shared by the old
// and the new tree never touches zero, so a commit costs what changed, and a
// clone (one new pointer) costs one reference.

// commit accumulates one atomic batch.
type commit struct {
	f       *FS
	ctx     context.Context
	refs    map[store.ID]int64 // count deltas
	stored  map[store.ID]int64 // committed counts looked up so far; -1: no such blob
	swaps   []store.RootSwap
	del     []store.ID
	deleted map[store.ID]bool
	queue   []btree.Child // blobs whose count dropped

	budget    int               // deletions this commit may still make
	zq        btree.Ref[zombie] // the zombie list as this commit leaves it
	zqChanged bool
	dead      []btree.Child // zombies taken off the list, to delete
	views     []viewRoot    // view roots this commit creates
	// guard holds the blobs that flushes outside the lock stored: the
	// commit deletes none of them (see putJob).
	guard map[store.ID]bool
}

func newCommit(f *FS) *commit {
	return &commit{f: f, ctx: f.ioCtx(), refs: map[store.ID]int64{}, stored: map[store.ID]int64{},
		deleted: map[store.ID]bool{}, budget: f.opt.ReleaseBudget, zq: f.zq}
}

// storedCount returns the committed count of id, -1 if the store lacks it.
func (c *commit) storedCount(id store.ID) (int64, error) {
	if n, ok := c.stored[id]; ok {
		return n, nil
	}
	info, err := c.f.st.Stat(c.ctx, id)
	n := info.Refs
	if errors.Is(err, store.ErrNotFound) {
		n, err = -1, nil
	}
	if err != nil {
		return 0, err
	}
	c.stored[id] = n
	return n, nil
}

// count returns id's count as this batch leaves it, and whether it is stored.
func (c *commit) count(id store.ID) (int64, bool, error) {
	n, err := c.storedCount(id)
	if err != nil {
		return 0, false, err
	}
	if n < 0 {
		return c.refs[id], false, nil
	}
	return n + c.refs[id], true, nil
}

// materialize takes one reference on ch, storing it and counting its
// children first if nothing counted it yet.
func (c *commit) materialize(ch btree.Child) error {
	before, exists, err := c.count(ch.ID)
	if err != nil {
		return err
	}
	c.refs[ch.ID]++
	if before > 0 {
		return nil
	}
	if exists {
		// A zombie's children are counted already: take it off the list.
		if _, listed, err := c.resurrect(ch.ID); err != nil || listed {
			return err
		}
	}
	if ch.Raw {
		if !exists {
			return corrupt("data blob %s is referenced but not stored", ch.ID.Short())
		}
		return nil
	}
	node := ch.Mem
	if node == nil {
		// Stored but uncounted (left by a failed commit): count its children.
		if node, err = c.f.loadAny(ch.ID); err != nil {
			return err
		}
	} else if !exists {
		b, err := node.Encode()
		if err != nil {
			return err
		}
		id, err := c.f.st.Put(c.ctx, b)
		if err != nil {
			return err
		}
		if id != ch.ID {
			return fmt.Errorf("node hashed to %s but stored as %s", ch.ID.Short(), id.Short())
		}
		c.f.fresh[id] = true
		c.stored[id] = 0
	}
	return node.Children(c.materialize)
}

// release drops one reference on ch; drain finishes the cascade.
func (c *commit) release(id store.ID, raw bool) {
	c.refs[id]--
	c.queue = append(c.queue, btree.Child{ID: id, Raw: raw})
}

// drain deletes every blob whose count reached zero, releasing its children,
// as long as the budget lasts; past it, such blobs become zombies. With
// unbounded, the budget does not apply (for the zombie list's own nodes).
func (c *commit) drain(unbounded bool) error {
	for len(c.queue) > 0 {
		ch := c.queue[len(c.queue)-1]
		c.queue = c.queue[:len(c.queue)-1]
		n, exists, err := c.count(ch.ID)
		if err != nil {
			return err
		}
		if !exists || n < 0 {
			return corrupt("blob %s released below zero", ch.ID.Short())
		}
		if n > 0 || c.deleted[ch.ID] || c.guard[ch.ID] {
			continue
		}
		if c.budget <= 0 && !unbounded {
			if err := c.addZombie(ch); err != nil {
				return err
			}
			continue
		}
		if err := c.remove(ch); err != nil {
			return err
		}
	}
	return nil
}

// remove deletes a blob whose count is zero and releases its children.
func (c *commit) remove(ch btree.Child) error {
	c.budget--
	c.deleted[ch.ID] = true
	c.del = append(c.del, ch.ID)
	if ch.Raw {
		return nil
	}
	node, err := c.f.loadAny(ch.ID)
	if err != nil {
		return err
	}
	return node.Children(func(k btree.Child) error { c.release(k.ID, k.Raw); return nil })
}

// uncounted reports whether id is stored, counted by nothing once this batch
// applies, and not yet being deleted.
func (c *commit) uncounted(id store.ID) (bool, error) {
	n, exists, err := c.count(id)
	return exists && n == 0 && !c.deleted[id] && !c.guard[id], err
}

// guardPuts guards the blobs of the flushes running outside the lock
// (FS.putJobBlobs) from deletion. A guarded blob left at count zero stays
// stored: its flush records it as fresh when it takes the lock again, so
// the next commit counts it or deletes it.
func (c *commit) guardPuts() error {
	g, err := c.f.putJobBlobs(c.ctx)
	c.guard = g
	return err
}

// run finishes the cascade, deletes unreferenced fresh blobs and applies the
// batch. The caller holds f.mu, and every volume's in-memory trees must be
// materialized in c or already committed: a fresh blob that no commit
// counted is deleted.
func (c *commit) run() error {
	if err := c.guardPuts(); err != nil {
		return err
	}
	if err := c.popZombies(); err != nil {
		return err
	}
	for _, z := range c.dead {
		if gone, err := c.uncounted(z.ID); err != nil {
			return err
		} else if gone {
			if err := c.remove(z); err != nil {
				return err
			}
		}
	}
	if err := c.drain(false); err != nil {
		return err
	}
	// Fresh blobs nothing counted are deleted; a listed zombie among them
	// leaves the list first. Only after the zombie list itself is saved do
	// we know what is unreferenced: its nodes may be fresh too.
	for id := range c.f.fresh {
		if gone, err := c.uncounted(id); err != nil {
			return err
		} else if gone {
			z, listed, err := c.resurrect(id)
			if err != nil {
				return err
			}
			if listed && !z.Raw {
				// A zombie's pointers count: remove it as one.
				if err := c.remove(btree.Child{ID: id}); err != nil {
					return err
				}
			}
		}
	}
	if err := c.saveZombies(); err != nil {
		return err
	}
	if err := c.drain(true); err != nil {
		return err
	}
	for id := range c.f.fresh {
		if gone, err := c.uncounted(id); err != nil {
			return err
		} else if gone {
			c.deleted[id] = true
			c.del = append(c.del, id)
		}
	}
	b := store.Batch{Refs: map[store.ID]int64{}, Roots: c.swaps, Delete: c.del}
	for id, d := range c.refs {
		if d != 0 {
			b.Refs[id] = d
		}
	}
	if len(b.Delete) > 0 {
		c.f.readMu.Lock()
		defer c.f.readMu.Unlock()
	}
	if err := c.f.st.Commit(c.ctx, b); err != nil {
		return err
	}
	clear(c.f.fresh)
	c.f.zq = c.zq
	for _, sw := range c.swaps {
		if sw.Name == zombieRoot {
			c.f.zqID = sw.New
		}
	}
	for _, id := range c.del {
		c.f.nodes.Remove(id)
		c.f.data.Remove(id)
	}
	return nil
}

// loadAny loads a stored node of any kind, for counting its children.
func (f *FS) loadAny(id store.ID) (btree.Encoder, error) {
	b, err := f.st.Get(f.ioCtx(), id)
	if err != nil {
		return nil, fmt.Errorf("node %s: %w", id.Short(), err)
	}
	kind, _, err := btree.ParseHeader(b)
	if err != nil {
		return nil, fmt.Errorf("node %s: %w", id.Short(), err)
	}
	switch kind {
	case btree.KindRope:
		return f.ropes.Decode(id, b)
	case btree.KindDir:
		return f.dirs.Decode(id, b)
	case btree.KindZombie:
		return f.zombies.Decode(id, b)
	case btree.KindVolume:
		m, err := f.decodeVolume(b)
		if err != nil {
			return nil, fmt.Errorf("volume node %s: %w", id.Short(), err)
		}
		return &volumeNode{f: f, m: m}, nil
	}
	return nil, corrupt("node %s has unknown kind %d", id.Short(), kind)
}

// commitLocked commits every changed volume (and extra, which is not yet
// registered) in one batch, access times included. The caller holds f.mu.
func (f *FS) commitLocked(extra []*Volume) error { return f.commitSomeLocked(extra, true) }

// commitSomeLocked is commitLocked; unless lazy, volumes whose only changes
// are access times (Volume.lazy) are left for later when nothing else
// would be committed: so the background commit does not run for reads
// alone, and their access times ride along with the next commit.
func (f *FS) commitSomeLocked(extra []*Volume, lazy bool) error {
	vols := append([]*Volume(nil), extra...)
	for _, v := range f.vols {
		vols = append(vols, v)
		lazy = lazy || v.dirty
	}
	lazy = lazy || len(extra) > 0 || len(f.fresh) > 0 || !f.zq.Empty()
	c := newCommit(f)
	type done struct {
		v  *Volume
		id store.ID
	}
	var changed []done
	// Every new root is materialized before any replaced one is released,
	// so that a root that is both (a volume made identical to another's
	// old state, a view reread onto the same bytes) never touches zero and
	// has its children counted again.
	var replaced []store.ID
	for _, v := range vols {
		if v.readOnly || v.closed {
			continue
		}
		if err := v.prepareLocked(); err != nil {
			return err
		}
		if !v.dirty && !(lazy && v.lazy) {
			continue
		}
		node := &volumeNode{f: f, m: v.meta}
		id, err := node.Hash()
		if err != nil {
			return err
		}
		if id == v.committed {
			v.clearDirty()
			continue
		}
		if err := c.materialize(btree.Child{ID: id, Mem: node}); err != nil {
			return err
		}
		c.swaps = append(c.swaps, store.RootSwap{Name: v.rootName, Old: v.committed, New: id})
		if !v.committed.IsZero() {
			replaced = append(replaced, v.committed)
		}
		changed = append(changed, done{v, id})
	}
	old, err := f.commitViews(c)
	if err != nil {
		return err
	}
	for _, id := range append(replaced, old...) {
		c.release(id, false)
	}
	if len(c.swaps) == 0 && len(f.fresh) == 0 && f.zq.Empty() {
		f.finishViews(c)
		f.evictLocked()
		return nil
	}
	if err := c.run(); err != nil {
		return err
	}
	f.finishViews(c)
	for _, d := range changed {
		d.v.committed = d.id
		d.v.clearDirty()
	}
	f.evictLocked()
	return nil
}
