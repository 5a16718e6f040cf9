package cowfs

import (
	"context"
	"errors"
	"fmt"
	"math"

	"github.com/cowfs/cowfs/internal/btree"
	"github.com/cowfs/cowfs/store"
)

// Zombies: bounded release.
//
// A commit deletes at most Options.ReleaseBudget blobs, so deleting a huge
// file or snapshot never stalls a commit. A blob whose count reaches zero
// beyond the budget becomes a zombie: it stays stored, its pointers to its
// children still count, and it is listed in the zombie tree, a B-tree of
// the common shape kept under the root zombieRoot, so the list survives a
// restart. Every commit first takes zombies off the list (within the
// budget), deletes them and releases their children. A zombie whose bytes a
// new node reproduces before then is resurrected: it leaves the list and its
// children, already counted, are not counted again.
//
// Zombie items hold no references (a zombie's count is 0); the zombie tree's
// own nodes are counted like any others.

// zombie is a blob with count 0 waiting to be deleted.
type zombie struct {
	ID  store.ID
	Raw bool // a data blob (no children)
}

type zombieOps struct{}

func (zombieOps) Size(zombie) int64                              { return 1 }
func (zombieOps) Key(z zombie) string                            { return string(z.ID[:]) }
func (zombieOps) Split(z zombie, _ int64) (zombie, zombie)       { return z, z }
func (zombieOps) Merge(a, _ zombie) (zombie, bool)               { return a, false }
func (zombieOps) Marked(zombie) bool                             { return false }
func (zombieOps) Children(zombie, func(btree.Child) error) error { return nil }

func (zombieOps) AppendItem(b []byte, z zombie) ([]byte, error) {
	b = append(b, z.ID[:]...)
	if z.Raw {
		return append(b, 1), nil
	}
	return append(b, 0), nil
}

func (zombieOps) DecodeItem(src []byte) (zombie, int, error) {
	if len(src) < store.IDSize+1 || src[store.IDSize] > 1 {
		return zombie{}, 0, corrupt("zombie entry")
	}
	var z zombie
	copy(z.ID[:], src)
	z.Raw = src[store.IDSize] == 1
	return z, store.IDSize + 1, nil
}

// loadZombies reads the committed zombie tree's root.
func (f *FS) loadZombies() error {
	id, err := f.st.GetRoot(context.Background(), zombieRoot)
	if errors.Is(err, store.ErrNotFound) {
		f.zq, f.zqID = btree.Ref[zombie]{}, store.ID{}
		return nil
	}
	if err != nil {
		return err
	}
	n, err := f.zombies.Load(id)
	if err != nil {
		// An unreadable list must not keep the FS (and fsck) from opening:
		// leave its root alone and delete without a budget meanwhile, so
		// nothing new needs the list. The checker reports the blob; the
		// log tells the operator, since Open succeeds.
		f.zq, f.zqID, f.zqErr = btree.Ref[zombie]{}, id, fmt.Errorf("zombie list: %w", err)
		f.logger().Error("the list of blobs waiting for deletion is unreadable; commits delete without a budget (the checker reports the blob)",
			"op", "open", "root", zombieRoot, "blob", id.String(), "err", err)
		return nil
	}
	count := int64(len(n.Items))
	for _, k := range n.Kids {
		count += k.Count
	}
	f.zq = btree.Stored[zombie](id, n.H, count, count, "")
	f.zqID = id
	return nil
}

// Zombies returns how many blobs are listed for deletion. Each may still
// hold a subtree that is released when it is deleted, so this is a lower
// bound of the work left; 0 means none is left.
func (f *FS) Zombies() int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.zq.Count
}

// addZombie lists a blob whose count reached zero beyond the budget.
func (c *commit) addZombie(ch btree.Child) error {
	t := c.f.zombies
	pos, _, found, err := t.Find(c.zq, string(ch.ID[:]))
	if err != nil || found {
		return err
	}
	c.zq, err = t.Replace(c.zq, pos, pos, t.FromItems([]zombie{{ID: ch.ID, Raw: ch.Raw}}))
	c.zqChanged = true
	return err
}

// resurrect takes id off the zombie list (a new node has the same bytes, or
// it is about to be deleted as a fresh blob) and returns what was listed.
func (c *commit) resurrect(id store.ID) (z zombie, listed bool, err error) {
	t := c.f.zombies
	pos, z, found, err := t.Find(c.zq, string(id[:]))
	if err != nil || !found {
		return z, false, err
	}
	c.zq, err = t.Replace(c.zq, pos, pos+1, btree.Ref[zombie]{})
	c.zqChanged = true
	return z, true, err
}

// popZombies takes up to the budget's worth of zombies off the list and
// queues them for deletion.
func (c *commit) popZombies() error {
	if c.f.zqErr != nil {
		c.budget = math.MaxInt // see loadZombies
		return nil
	}
	n := min(int64(c.budget), c.zq.Count)
	if n <= 0 {
		return nil
	}
	t := c.f.zombies
	head, rest, err := t.Split(c.zq, n)
	if err != nil {
		return err
	}
	it := t.Seek(head, 0)
	for z, _, ok := it.Next(); ok; z, _, ok = it.Next() {
		c.dead = append(c.dead, btree.Child{ID: z.ID, Raw: z.Raw})
	}
	if err := it.Err(); err != nil {
		return err
	}
	c.zq, c.zqChanged = rest, true
	return nil
}

// saveZombies materializes the new zombie tree and swaps its root.
func (c *commit) saveZombies() error {
	if !c.zqChanged || c.f.zqErr != nil {
		return nil
	}
	var id store.ID
	if !c.zq.Empty() {
		var err error
		if id, err = btree.RefID(c.zq); err != nil {
			return err
		}
		ch, err := btree.RefChild(c.zq)
		if err != nil {
			return err
		}
		if err := c.materialize(ch); err != nil {
			return err
		}
	}
	if id == c.f.zqID {
		return nil
	}
	c.swaps = append(c.swaps, store.RootSwap{Name: zombieRoot, Old: c.f.zqID, New: id})
	if !c.f.zqID.IsZero() {
		c.release(c.f.zqID, false)
	}
	return nil
}
