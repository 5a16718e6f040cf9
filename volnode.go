package cowfs

import (
	"encoding/binary"
	"fmt"
	"math"
	"sync"

	"github.com/cowfs/cowfs/internal/btree"
	"github.com/cowfs/cowfs/internal/dirtree"
	"github.com/cowfs/cowfs/store"
)

// volMeta is what a volume node holds: the root directory's entry, three side
// tables, and the counters that allocate inode numbers.
type volMeta struct {
	root dirtree.Entry // the root directory ("/"); its Name is ""
	// links holds hard-linked inodes, keyed by linkKey(id); a name of such an
	// inode is an entry whose Link field is the id.
	links dirtree.Dir
	// orphans holds files unlinked while open, keyed by linkKey(serial), so
	// their data lives until they are closed. Opening the volume again drops
	// them (no handle survives a restart).
	orphans dirtree.Dir
	// scopes maps (scope prefix of a parent, Scope marker of an entry) to the
	// prefix the entry's subtree uses: key scopeKey(...), value in Local.
	scopes dirtree.Dir

	nextLocal, nextScope, nextPrefix, nextLink uint64
	created                                    int64
}

// volumeNode makes volMeta a blob (btree.Encoder).
type volumeNode struct {
	f    *FS
	m    volMeta
	once sync.Once
	id   store.ID
	err  error
}

func (n *volumeNode) Hash() (store.ID, error) {
	n.once.Do(func() {
		var b []byte
		if b, n.err = n.Encode(); n.err == nil {
			n.id = store.Sum(b)
		}
	})
	return n.id, n.err
}

func (n *volumeNode) Encode() ([]byte, error) {
	m := &n.m
	b := btree.PutHeader(nil, btree.KindVolume, 0)
	for _, v := range []uint64{m.nextLocal, m.nextScope, m.nextPrefix, m.nextLink} {
		b = binary.AppendUvarint(b, v)
	}
	b = binary.AppendVarint(b, m.created)
	var err error
	if b, err = n.f.dirs.Ops.AppendItem(b, m.root); err != nil {
		return nil, err
	}
	for _, d := range []dirtree.Dir{m.links, m.orphans, m.scopes} {
		if b, err = btree.AppendRoot(b, d); err != nil {
			return nil, err
		}
	}
	return b, nil
}

func (n *volumeNode) Children(fn func(btree.Child) error) error {
	if err := n.f.dirs.Ops.Children(n.m.root, fn); err != nil {
		return err
	}
	for _, d := range []dirtree.Dir{n.m.links, n.m.orphans, n.m.scopes} {
		if d.Empty() {
			continue
		}
		c, err := btree.RefChild(d)
		if err != nil {
			return err
		}
		if err := fn(c); err != nil {
			return err
		}
	}
	return nil
}

// decodeVolume parses a volume node.
func (f *FS) decodeVolume(b []byte) (volMeta, error) {
	var m volMeta
	kind, _, err := btree.ParseHeader(b)
	if err != nil {
		return m, err
	}
	if kind != btree.KindVolume {
		return m, corrupt("kind %d where a volume node was expected", kind)
	}
	p := b[btree.HeaderSize:]
	for _, v := range []*uint64{&m.nextLocal, &m.nextScope, &m.nextPrefix, &m.nextLink} {
		x, k := binary.Uvarint(p)
		if k <= 0 {
			return m, corrupt("truncated volume node")
		}
		*v, p = x, p[k:]
	}
	c, k := binary.Varint(p)
	if k <= 0 {
		return m, corrupt("truncated volume node")
	}
	m.created, p = c, p[k:]
	if m.root, k, err = f.dirs.Ops.DecodeItem(p); err != nil {
		return m, err
	}
	p = p[k:]
	if !m.root.IsDir() {
		return m, corrupt("volume root is not a directory")
	}
	for _, d := range []*dirtree.Dir{&m.links, &m.orphans, &m.scopes} {
		if *d, k, err = btree.DecodeRoot[dirtree.Entry](p); err != nil {
			return m, err
		}
		p = p[k:]
	}
	if len(p) != 0 {
		return m, corrupt("%d trailing bytes in volume node", len(p))
	}
	if m.nextPrefix > maxPrefix+1 || m.nextLocal > maxLocal+1 || m.nextScope == math.MaxUint64 || m.nextLink == math.MaxUint64 {
		return m, corrupt("volume counters out of range")
	}
	return m, nil
}

// loadVolume reads and parses a volume node.
func (f *FS) loadVolume(id store.ID) (volMeta, error) {
	b, err := f.st.Get(f.ioCtx(), id)
	if err != nil {
		return volMeta{}, fmt.Errorf("volume node %s: %w", id.Short(), err)
	}
	m, err := f.decodeVolume(b)
	if err != nil {
		return volMeta{}, fmt.Errorf("volume node %s: %w", id.Short(), err)
	}
	return m, nil
}
