package cowfs

import (
	"encoding/binary"
	"errors"
	"syscall"

	"github.com/cowfs/cowfs/internal/dirtree"
)

// Inode numbers.
//
// A directory clone shares its whole subtree, so the entries inside cannot be
// renumbered. Instead each entry keeps a Local number, unique within its
// scope, and the inode number is prefix<<40 | Local, where prefix names the
// scope. The root starts scope 0. An entry with a Scope marker starts a new
// scope for its subtree: its prefix is scopes[(parent's prefix, marker)],
// allocated from a counter the first time the pair is met. A clone of a
// directory gets a fresh marker, so the clone's subtree, and every nested
// scope inside it, resolves to prefixes nothing else uses. A rename into a
// different scope gives the moved entry a fresh marker mapped to the prefix it
// had, so its number and its subtree's numbers do not change.
//
// Hard-linked inodes live in the volume's link table and keep the absolute
// inode number they had when first linked (a clone's copies get new ones).
const (
	localBits = 40
	maxLocal  = 1<<localBits - 1
	maxPrefix = 1<<(64-localBits) - 1
	rootLocal = 1
)

// ino is x's inode number: prefix<<localBits | Local, or Local itself for
// a hard-linked inode, which keeps the absolute number it had when linked.
func (x *inode) ino() uint64 {
	if x.linkID != 0 {
		return x.ent.Local
	}
	return x.prefix<<localBits | x.ent.Local
}

// scopePrefix resolves the prefix of a subtree starting at an entry with
// Scope marker under a parent of prefix parent, allocating one if new.
func (v *Volume) scopePrefix(parent, marker uint64) (uint64, error) {
	k := [2]uint64{parent, marker}
	if p, ok := v.scopeCache[k]; ok {
		return p, nil
	}
	key := scopeKey(parent, marker)
	e, ok, err := dirtree.Lookup(v.f.dirs, v.meta.scopes, key)
	if err != nil {
		return 0, err
	}
	if !ok {
		if v.meta.nextPrefix > maxPrefix {
			return 0, errorf("allocate inode numbers", "", syscall.ENOSPC, errors.New("inode number scopes exhausted"))
		}
		e = dirtree.Entry{Name: key, Local: v.meta.nextPrefix}
		v.meta.nextPrefix++
		if err := v.setScope(key, e.Local); err != nil {
			return 0, err
		}
	}
	v.scopeCache[k] = e.Local
	return e.Local, nil
}

// setScope records scopes[key] = prefix. A read-only snapshot keeps it in
// memory only.
func (v *Volume) setScope(key string, prefix uint64) error {
	d, err := dirtree.Put(v.f.dirs, v.meta.scopes, dirtree.Entry{Name: key, Local: prefix})
	if err != nil {
		return err
	}
	v.meta.scopes = d
	if !v.readOnly {
		v.dirty = true
	}
	delete(v.scopeCache, [2]uint64{binary.BigEndian.Uint64([]byte(key)), binary.BigEndian.Uint64([]byte(key[8:]))})
	return nil
}

// scopeKey is the key of the scope table's entry for an entry with Scope
// marker under a parent of the given prefix: both big-endian, 16 bytes.
func scopeKey(prefix, marker uint64) string {
	var b [16]byte
	for i := 0; i < 8; i++ {
		b[7-i] = byte(prefix >> (8 * i))
		b[15-i] = byte(marker >> (8 * i))
	}
	return string(b[:])
}

// newLocal allocates an inode number within a scope.
func (v *Volume) newLocal() (uint64, error) {
	if v.meta.nextLocal > maxLocal {
		return 0, errorf("allocate inode number", "", syscall.ENOSPC, errors.New("inode numbers exhausted"))
	}
	v.meta.nextLocal++
	return v.meta.nextLocal - 1, nil
}
