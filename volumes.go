package cowfs

import (
	"context"
	"errors"
	"sort"
	"strings"
	"syscall"

	"github.com/cowfs/cowfs/internal/btree"
	"github.com/cowfs/cowfs/internal/dirtree"
	"github.com/cowfs/cowfs/store"
)

// validName reports whether name may name a volume or a snapshot: 1 to 100
// of [A-Za-z0-9._-], not "." or "..". Such a name holds no ':', which the
// store's root names rely on (roots.go).
func validName(name string) bool {
	if len(name) == 0 || len(name) > 100 || name == "." || name == ".." {
		return false
	}
	for _, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// CreateVolume creates an empty volume and returns it open.
func (f *FS) CreateVolume(name string) (*Volume, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.check("create volume"); err != nil {
		return nil, err
	}
	if !validName(name) {
		return nil, errorf("create volume", name, syscall.EINVAL, errors.New("names are 1-100 of [A-Za-z0-9._-]"))
	}
	if _, err := f.st.GetRoot(f.ioCtx(), volRoot(name)); err == nil {
		return nil, errorf("create volume", name, syscall.EEXIST, nil)
	}
	now := f.now()
	root := dirtree.Entry{Mode: dirtree.TypeDir | 0o755, Local: 1, Atime: now, Mtime: now, Ctime: now, Btime: now}
	v := newVolume(f, name, volRoot(name), false, volMeta{root: root, nextLocal: 2, nextScope: 1, nextPrefix: 1, nextLink: 1, created: f.nowNano()})
	v.dirty = true
	if err := f.commitLocked([]*Volume{v}); err != nil {
		return nil, wrapIO("create volume", name, err)
	}
	f.vols[v.rootName] = v
	return v, nil
}

// Volume opens an existing volume; opening it again returns the same Volume.
func (f *FS) Volume(name string) (*Volume, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.openLocked(volRoot(name), name, false)
}

// openLocked returns the Volume of root rootName (named name), loading its
// volume node if it is not open yet. The caller holds f.mu.
func (f *FS) openLocked(rootName, name string, readOnly bool) (*Volume, error) {
	if err := f.check("open volume"); err != nil {
		return nil, err
	}
	if v, ok := f.vols[rootName]; ok {
		return v, nil
	}
	id, err := f.st.GetRoot(f.ioCtx(), rootName)
	if errors.Is(err, store.ErrNotFound) {
		return nil, errorf("open volume", name, syscall.ENOENT, nil)
	}
	if err != nil {
		return nil, wrapIO("open volume", name, err)
	}
	meta, err := f.loadVolume(id)
	if err != nil {
		return nil, wrapIO("open volume", name, err)
	}
	v := newVolume(f, name, rootName, readOnly, meta)
	v.committed = id
	if !readOnly && !meta.orphans.Empty() {
		// Files unlinked while open in an earlier run: nothing holds them now.
		v.meta.orphans = dirtree.Dir{}
		v.dirty = true
	}
	f.vols[rootName] = v
	return v, nil
}

// Volumes lists the volumes' names, sorted.
func (f *FS) Volumes() ([]string, error) {
	roots, err := f.st.ListRoots(context.Background())
	if err != nil {
		return nil, wrapIO("list volumes", "", err)
	}
	var names []string
	for _, r := range roots {
		if name, ok := strings.CutPrefix(r.Name, volumeRootPrefix); ok {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	return names, nil
}

// CloneVolume creates volume dst as a writable copy of volume src in O(1).
// Uncommitted changes of src are committed first.
func (f *FS) CloneVolume(src, dst string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.check("clone volume"); err != nil {
		return err
	}
	if !validName(dst) {
		return errorf("clone volume", dst, syscall.EINVAL, nil)
	}
	return f.linkRootLocked("clone volume", volRoot(src), volRoot(dst), src)
}

// linkRootLocked binds root name to to a copy of the committed root of
// from (after committing everything): a new volume node that shares the
// source's trees, so the copy costs O(1) whatever the volume holds. The copy
// records its own creation time and none of the source's open orphans.
func (f *FS) linkRootLocked(op, from, to, what string) error {
	if err := f.commitLocked(nil); err != nil {
		return wrapIO(op, what, err)
	}
	id, err := f.st.GetRoot(f.ioCtx(), from)
	if errors.Is(err, store.ErrNotFound) {
		return errorf(op, what, syscall.ENOENT, nil)
	}
	if err != nil {
		return wrapIO(op, what, err)
	}
	m, err := f.loadVolume(id)
	if err != nil {
		return wrapIO(op, what, err)
	}
	m.created = f.nowNano()
	m.orphans = dirtree.Dir{}
	node := &volumeNode{f: f, m: m}
	nid, err := node.Hash()
	if err != nil {
		return wrapIO(op, what, err)
	}
	c := newCommit(f)
	if err := c.materialize(btree.Child{ID: nid, Mem: node}); err != nil {
		return wrapIO(op, what, err)
	}
	c.swaps = append(c.swaps, store.RootSwap{Name: to, New: nid})
	if err := c.run(); errors.Is(err, store.ErrConflict) {
		return errorf(op, to, syscall.EEXIST, nil)
	} else if err != nil {
		return wrapIO(op, what, err)
	}
	return nil
}

// DeleteVolume removes a volume and its snapshots; space shared with nothing
// else is released. The volume must not be open elsewhere in this FS.
func (f *FS) DeleteVolume(name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.check("delete volume"); err != nil {
		return err
	}
	roots, err := f.st.ListRoots(f.ioCtx())
	if err != nil {
		return wrapIO("delete volume", name, err)
	}
	found := false
	var drop []string
	for _, r := range roots {
		if r.Name == volRoot(name) || strings.HasPrefix(r.Name, snapPrefix(name)) {
			found = found || r.Name == volRoot(name)
			drop = append(drop, r.Name)
		}
	}
	if !found {
		return errorf("delete volume", name, syscall.ENOENT, nil)
	}
	return f.dropRootLocked("delete volume", name, drop...)
}

// dropRootLocked deletes roots, in one batch, and releases what only they
// held. It fails with EBUSY, changing nothing, if files are open on any.
func (f *FS) dropRootLocked(op, what string, rootNames ...string) error {
	for _, name := range rootNames {
		if v, ok := f.vols[name]; ok && v.busy() {
			return errorf(op, what, syscall.EBUSY, errors.New("files are open on it"))
		}
	}
	// Commit the rest first: the drop's batch deletes unreferenced fresh
	// blobs, which is safe only once every in-memory tree is materialized.
	if err := f.commitLocked(nil); err != nil {
		return wrapIO(op, what, err)
	}
	ctx := f.ioCtx()
	c := newCommit(f)
	for _, name := range rootNames {
		id, err := f.st.GetRoot(ctx, name)
		if errors.Is(err, store.ErrNotFound) {
			return errorf(op, what, syscall.ENOENT, nil)
		} else if err != nil {
			return wrapIO(op, what, err)
		}
		c.swaps = append(c.swaps, store.RootSwap{Name: name, Old: id})
		c.release(id, false)
	}
	if err := c.run(); err != nil {
		return wrapIO(op, what, err)
	}
	for _, name := range rootNames {
		if v, ok := f.vols[name]; ok {
			delete(f.vols, name)
			v.closed = true
		}
	}
	return nil
}
