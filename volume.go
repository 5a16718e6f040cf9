package cowfs

import (
	"context"
	"encoding/binary"
	"errors"
	"math"
	"path"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/cowfs/cowfs/acl"
	"github.com/cowfs/cowfs/internal/dirtree"
	"github.com/cowfs/cowfs/store"
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

// Volume is a tree of directories and files: a writable volume or a read-only
// snapshot.
type Volume struct {
	f         *FS
	name      string // volume name, or "VOLUME@SNAPSHOT"
	rootName  string // its root in the store
	readOnly  bool
	meta      volMeta // meta.root is refreshed from root at commit
	root      *inode
	committed store.ID
	dirty     bool // changed since the last commit
	// lazy: access times changed since the last commit, which wait for a
	// commit made for another reason (Options.Atime)
	lazy   bool
	closed bool

	links      map[uint64]*inode // loaded hard-linked inodes
	orphans    map[*inode]bool   // unlinked while open
	dirtySide  map[*inode]bool   // link-table and orphan inodes to write back
	dropKeys   []sideKey         // side-table entries to delete at commit
	scopeCache map[[2]uint64]uint64
	opens      int // open Files
	loaded     int // inodes loaded since the last eviction
}

// sideKey names an entry of the link or orphan table.
type sideKey struct {
	orphans bool
	key     string
}

// inode is a loaded file, directory or other node of a volume. Its ent is
// authoritative; the copy in its parent's directory tree is stale while it
// is dirty and is refreshed by sync.
type inode struct {
	v      *Volume
	parent *inode // nil for the root, link-table and orphan inodes
	name   string
	ent    dirtree.Entry
	prefix uint64 // scope prefix of this entry's inode number

	kids      map[string]*inode // loaded children of a directory (not link names)
	dirtyKids map[*inode]bool
	dirty     bool

	linkID  uint64 // a hard-linked inode, kept in the link table
	orphan  uint64 // an unlinked open inode, kept in the orphan table
	opens   int
	removed bool // no name and no handle: gone

	wbuf    []byte // buffered sequential write at wbufOff
	wbufOff int64
	pending int64 // bytes in Pending extents of ent.Data
}

func newVolume(f *FS, name, rootName string, readOnly bool, m volMeta) *Volume {
	v := &Volume{f: f, name: name, rootName: rootName, readOnly: readOnly, meta: m,
		links: map[uint64]*inode{}, orphans: map[*inode]bool{}, dirtySide: map[*inode]bool{},
		scopeCache: map[[2]uint64]uint64{}}
	v.root = &inode{v: v, ent: m.root}
	return v
}

// Name returns the volume's name ("VOLUME@SNAPSHOT" for a snapshot).
func (v *Volume) Name() string { return v.name }

// ReadOnly reports whether v is a snapshot.
func (v *Volume) ReadOnly() bool { return v.readOnly }

func (v *Volume) busy() bool { return v.opens > 0 }

func (x *inode) ino() uint64 {
	if x.linkID != 0 {
		return x.ent.Local
	}
	return x.prefix<<localBits | x.ent.Local
}

func (x *inode) isDir() bool { return x.ent.IsDir() }

// touch marks x changed: its entry (and every ancestor's) must be written
// back at the next commit.
func (x *inode) touch() {
	x.v.dirty = true
	x.mark()
}

// mark flags x and its ancestors for writing back at the next commit of
// the volume.
func (x *inode) mark() {
	v := x.v
	for ; x != nil && !x.dirty; x = x.parent {
		x.dirty = true
		switch {
		case x.parent != nil:
			if x.parent.dirtyKids == nil {
				x.parent.dirtyKids = map[*inode]bool{}
			}
			x.parent.dirtyKids[x] = true
		case x.linkID != 0 || x.orphan != 0:
			v.dirtySide[x] = true
		}
	}
}

// accessed updates x's access time for a read of its content or, for a
// directory, of its entries, as Options.Atime says: with Relatime when the
// access time is not after the modification or change time or is a day
// old, as Linux's relatime_need_update, and never to the time it already
// holds. The update marks x for writing back but leaves the volume clean:
// it waits for the next commit made for another reason (v.lazy). A
// snapshot never changes.
func (x *inode) accessed() {
	now := x.v.f.now()
	if !x.atimeDue(now) {
		return
	}
	x.ent.Atime = now
	x.v.lazy = true
	x.mark()
}

// atimeDue reports whether a read at now updates x's access time (see
// accessed).
func (x *inode) atimeDue(now dirtree.Time) bool {
	v := x.v
	mode := v.f.opt.Atime
	e := &x.ent
	if v.readOnly || mode == Noatime || x.removed || e.Atime == now {
		return false
	}
	const day = 24 * 60 * 60
	return mode == Strictatime || e.Mtime.Compare(e.Atime) >= 0 || e.Ctime.Compare(e.Atime) >= 0 ||
		now.Sec >= math.MinInt64+day && e.Atime.Sec <= now.Sec-day
}

// stamp sets x's change time and, if mod, its modification time.
func (x *inode) stamp(mod bool) {
	now := x.v.f.now()
	x.ent.Ctime = now
	if mod {
		x.ent.Mtime = now
	}
	x.touch()
}

// syncTree writes dirty children's entries into x's directory tree, deepest
// first, so x.ent is complete.
func (x *inode) syncTree() error {
	// In name order, so the tree's shape (and its nodes' IDs) do not depend
	// on map iteration order.
	kids := make([]*inode, 0, len(x.dirtyKids))
	for k := range x.dirtyKids {
		kids = append(kids, k)
	}
	sort.Slice(kids, func(i, j int) bool { return kids[i].name < kids[j].name })
	for _, k := range kids {
		if err := k.syncTree(); err != nil {
			return err
		}
		if err := k.flush(true); err != nil {
			return err
		}
		d, err := dirtree.Put(x.v.f.dirs, x.ent.Dir, k.nameEntry())
		if err != nil {
			return err
		}
		x.ent.Dir = d
		k.dirty = false
	}
	x.dirtyKids = nil
	return nil
}

// nameEntry is x's entry under its name in its parent.
func (x *inode) nameEntry() dirtree.Entry {
	e := x.ent
	e.Name = x.name
	return e
}

// prepareLocked flushes buffered writes and writes every dirty entry back
// into the volume's tree, leaving v.meta ready to commit.
func (v *Volume) prepareLocked() error {
	if err := v.root.syncTree(); err != nil {
		return err
	}
	if err := v.syncSide(); err != nil {
		return err
	}
	v.meta.root = v.root.ent
	v.root.dirty = false
	return nil
}

func (v *Volume) clearDirty() { v.dirty, v.lazy = false, false }

// syncSide writes changed link-table and orphan inodes into their tables.
func (v *Volume) syncSide() error {
	for _, k := range v.dropKeys {
		table := v.sideTable(k.orphans)
		d, err := dirtree.Delete(v.f.dirs, *table, k.key)
		if err != nil {
			return err
		}
		*table = d
	}
	v.dropKeys = nil
	for x := range v.dirtySide {
		if x.removed {
			continue
		}
		if err := x.syncTree(); err != nil {
			return err
		}
		if err := x.flush(true); err != nil {
			return err
		}
		e := x.ent
		table := v.sideTable(x.orphan != 0)
		e.Name = linkKey(x.linkID)
		if x.orphan != 0 {
			e.Name = linkKey(x.orphan)
		}
		d, err := dirtree.Put(v.f.dirs, *table, e)
		if err != nil {
			return err
		}
		*table = d
		x.dirty = false
	}
	clear(v.dirtySide)
	return nil
}

// sideTable returns the orphan table or the link table.
func (v *Volume) sideTable(orphans bool) *dirtree.Dir {
	if orphans {
		return &v.meta.orphans
	}
	return &v.meta.links
}

// dropSide schedules x's side-table entry for deletion and forgets x.
func (v *Volume) dropSide(x *inode) {
	if x.orphan != 0 {
		v.dropKeys = append(v.dropKeys, sideKey{true, linkKey(x.orphan)})
	} else if x.linkID != 0 {
		v.dropKeys = append(v.dropKeys, sideKey{false, linkKey(x.linkID)})
	}
	delete(v.dirtySide, x)
	v.dirty = true
}

// linkKey is the side-table key of a link or orphan serial number.
func linkKey(id uint64) string { return string(binary.BigEndian.AppendUint64(nil, id)) }

// scopePrefix resolves the prefix of a subtree starting at an entry with
// Scope marker under a parent of prefix parent, allocating one if new.
func (v *Volume) scopePrefix(parent, marker uint64) (uint64, error) {
	k := [2]uint64{parent, marker}
	if p, ok := v.scopeCache[k]; ok {
		return p, nil
	}
	key := string(binary.BigEndian.AppendUint64(binary.BigEndian.AppendUint64(nil, parent), marker))
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

// newLocal allocates an inode number within a scope.
func (v *Volume) newLocal() (uint64, error) {
	if v.meta.nextLocal > maxLocal {
		return 0, errorf("allocate inode number", "", syscall.ENOSPC, errors.New("inode numbers exhausted"))
	}
	v.meta.nextLocal++
	return v.meta.nextLocal - 1, nil
}

// child returns the loaded inode for name in directory x, loading it from the
// tree if needed; nil if there is no such entry.
func (x *inode) child(name string) (*inode, error) {
	if k, ok := x.kids[name]; ok {
		return k, nil
	}
	e, ok, err := dirtree.Lookup(x.v.f.dirs, x.ent.Dir, name)
	if err != nil || !ok {
		return nil, err
	}
	return x.adopt(e)
}

// adopt makes a loaded inode of entry e found in directory x.
func (x *inode) adopt(e dirtree.Entry) (*inode, error) {
	v := x.v
	if e.Link != 0 {
		return v.linkInode(e.Link)
	}
	k := &inode{v: v, parent: x, name: e.Name, ent: e, prefix: x.prefix}
	if e.Scope != 0 {
		p, err := v.scopePrefix(x.prefix, e.Scope)
		if err != nil {
			return nil, err
		}
		k.prefix = p
	}
	if x.kids == nil {
		x.kids = map[string]*inode{}
	}
	x.kids[e.Name] = k
	v.loaded++
	return k, nil
}

// keep reports whether x holds something its entry in the tree lacks, or is
// in use: such an inode must stay loaded.
func (x *inode) keep() bool {
	return x.dirty || x.opens > 0 || x.wbuf != nil || x.pending > 0 || len(x.dirtyKids) > 0
}

// evict drops the loaded inodes below x that need not stay loaded (see
// keep), and reports whether x itself must stay. Dropped inodes are loaded
// again from the tree when next looked up.
func (x *inode) evict() bool {
	stay := x.keep()
	for name, k := range x.kids {
		if k.evict() {
			stay = true
		} else {
			delete(x.kids, name)
		}
	}
	return stay
}

// evictLocked drops clean inodes once more than Options.MaxInodes were
// loaded since the last time, so memory follows what is in use, not what
// was ever looked at. It runs after a commit, when most inodes are clean.
func (v *Volume) evictLocked() {
	if v.loaded <= v.f.opt.MaxInodes {
		return
	}
	v.root.evict()
	for id, x := range v.links {
		if !x.keep() && !v.dirtySide[x] {
			delete(v.links, id)
		}
	}
	v.loaded = 0
}

// linkInode returns the loaded hard-linked inode id.
func (v *Volume) linkInode(id uint64) (*inode, error) {
	if x, ok := v.links[id]; ok {
		return x, nil
	}
	e, ok, err := dirtree.Lookup(v.f.dirs, v.meta.links, linkKey(id))
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, corrupt("link %d has a name but no inode", id)
	}
	x := &inode{v: v, ent: e, linkID: id}
	v.loaded++
	v.links[id] = x
	return x, nil
}

// maxSymlinks bounds symlinks followed while resolving one path (ELOOP).
const maxSymlinks = 40

// resolved is where a path leads: the directory holding its last name, the
// name, and the inode it names (nil if none).
type resolved struct {
	dir  *inode
	name string
	x    *inode
}

// resolve walks p from the root. Symlinks in the middle are followed; the
// last one only if follow. The path may name nothing (x nil) as long as its
// directory exists.
func (v *Volume) resolve(op, p string, follow bool) (resolved, error) {
	r, err := v.resolvePath(op, p, follow)
	// A trailing slash asks for a directory (a symlink is not followed here,
	// so removing "link/" can never remove what the link points at).
	if err == nil && r.x != nil && len(p) > 1 && strings.HasSuffix(p, "/") && !r.x.isDir() {
		return resolved{}, errorf(op, p, syscall.ENOTDIR, nil)
	}
	return r, err
}

// dotLast reports whether p ends in "." or "..", which rmdir, unlink and
// rename refuse (EINVAL).
func dotLast(p string) bool {
	parts := splitPath(p)
	return len(parts) > 0 && (parts[len(parts)-1] == "." || parts[len(parts)-1] == "..")
}

func (v *Volume) resolvePath(op, p string, follow bool) (resolved, error) {
	if v.closed {
		return resolved{}, errorf(op, p, syscall.EBADF, errors.New("volume closed"))
	}
	if strings.IndexByte(p, 0) >= 0 {
		return resolved{}, errorf(op, p, syscall.EINVAL, errors.New("NUL in path"))
	}
	parts := splitPath(p)
	stack := []*inode{v.root}
	links := 0
	for len(parts) > 0 {
		name := parts[0]
		parts = parts[1:]
		dir := stack[len(stack)-1]
		if !dir.isDir() { // also for "file/." and "file/.."
			return resolved{}, errorf(op, p, syscall.ENOTDIR, nil)
		}
		switch name {
		case ".":
			if len(parts) == 0 {
				return resolved{dir: dir.parentOrSelf(), name: dir.name, x: dir}, nil
			}
			continue
		case "..":
			if len(stack) > 1 {
				stack = stack[:len(stack)-1]
			}
			if len(parts) == 0 {
				top := stack[len(stack)-1]
				return resolved{dir: top.parentOrSelf(), name: top.name, x: top}, nil
			}
			continue
		}
		if len(name) > dirtree.MaxName {
			return resolved{}, errorf(op, p, syscall.ENAMETOOLONG, nil)
		}
		x, err := dir.child(name)
		if err != nil {
			return resolved{}, wrapIO(op, p, err)
		}
		if x != nil && x.ent.Type() == dirtree.TypeLink && (len(parts) > 0 || follow) {
			if links++; links > maxSymlinks {
				return resolved{}, errorf(op, p, syscall.ELOOP, nil)
			}
			target := x.ent.Target
			if strings.HasPrefix(target, "/") {
				stack = stack[:1]
			}
			parts = append(splitPath(target), parts...)
			if len(parts) == 0 {
				top := stack[len(stack)-1]
				return resolved{dir: top.parentOrSelf(), name: top.name, x: top}, nil
			}
			continue
		}
		if len(parts) == 0 {
			return resolved{dir: dir, name: name, x: x}, nil
		}
		if x == nil {
			return resolved{}, errorf(op, p, syscall.ENOENT, nil)
		}
		stack = append(stack, x)
	}
	return resolved{dir: v.root, name: "", x: v.root}, nil
}

func (x *inode) parentOrSelf() *inode {
	if x.parent != nil {
		return x.parent
	}
	return x
}

func splitPath(p string) []string {
	var parts []string
	for _, s := range strings.Split(p, "/") {
		if s != "" {
			parts = append(parts, s)
		}
	}
	return parts
}

// lookup resolves p to an existing inode.
func (v *Volume) lookup(op, p string, follow bool) (*inode, error) {
	r, err := v.resolve(op, p, follow)
	if err != nil {
		return nil, err
	}
	if r.x == nil {
		return nil, errorf(op, p, syscall.ENOENT, nil)
	}
	return r.x, nil
}

// writable fails on a read-only snapshot.
func (v *Volume) writable(op, p string) error {
	if v.readOnly {
		return errorf(op, p, syscall.EROFS, errors.New("snapshots are read-only"))
	}
	return nil
}

// create makes a new entry named r.name in r.dir, with the permission bits
// and ACLs that r.dir's default ACL or o's umask give it.
func (v *Volume) create(op, p string, r resolved, e dirtree.Entry, o createOpts) (*inode, error) {
	if r.x != nil {
		return nil, errorf(op, p, syscall.EEXIST, nil)
	}
	if r.name == "" {
		return nil, errorf(op, p, syscall.EEXIST, nil)
	}
	if r.dir.removed || (r.dir.parent == nil && r.dir != v.root) {
		return nil, errorf(op, p, syscall.ENOENT, errors.New("directory was removed"))
	}
	if err := inherit(op, p, &r.dir.ent, &e, o); err != nil {
		return nil, err
	}
	local, err := v.newLocal()
	if err != nil {
		return nil, err
	}
	now := v.f.now()
	e.Name, e.Local = r.name, local
	e.Atime, e.Mtime, e.Ctime, e.Btime = now, now, now, now
	d, err := dirtree.Put(v.f.dirs, r.dir.ent.Dir, e)
	if err != nil {
		return nil, wrapIO(op, p, err)
	}
	r.dir.ent.Dir = d
	if e.IsDir() {
		r.dir.ent.Subdirs++
	}
	r.dir.stamp(true)
	return r.dir.adopt(e)
}

// Stat returns information about the file p names, following symlinks.
func (v *Volume) Stat(p string) (*FileInfo, error) { return v.stat("stat", p, true) }

// Lstat is Stat without following a final symlink.
func (v *Volume) Lstat(p string) (*FileInfo, error) { return v.stat("lstat", p, false) }

func (v *Volume) stat(op, p string, follow bool) (*FileInfo, error) {
	v.f.mu.Lock()
	defer v.f.mu.Unlock()
	x, err := v.lookup(op, p, follow)
	if err != nil {
		return nil, err
	}
	if err := x.flushBuf(); err != nil {
		return nil, wrapIO(op, p, err)
	}
	return x.info(path.Base("/" + p)), nil
}

// Mkdir creates a directory with permission bits perm (see CreateOption
// and Umask for how its directory's default ACL and a umask apply).
func (v *Volume) Mkdir(p string, perm uint32, opts ...CreateOption) error {
	v.f.mu.Lock()
	defer v.f.mu.Unlock()
	if err := v.writable("mkdir", p); err != nil {
		return err
	}
	r, err := v.resolve("mkdir", p, false)
	if err != nil {
		return err
	}
	_, err = v.create("mkdir", p, r, dirtree.Entry{Mode: dirtree.TypeDir | perm&0o7777}, applyCreateOptions(opts))
	return err
}

// MkdirAll creates a directory and any missing parents.
func (v *Volume) MkdirAll(p string, perm uint32) error {
	parts := splitPath(p)
	for i := range parts {
		sub := strings.Join(parts[:i+1], "/")
		err := v.Mkdir(sub, perm)
		if err != nil && !errors.Is(err, syscall.EEXIST) {
			return err
		}
		if err != nil {
			if fi, serr := v.Stat(sub); serr != nil || !fi.IsDir() {
				return errorf("mkdir", sub, syscall.ENOTDIR, nil)
			}
		}
	}
	return nil
}

// Symlink creates p as a symbolic link to target.
func (v *Volume) Symlink(target, p string) error {
	v.f.mu.Lock()
	defer v.f.mu.Unlock()
	if err := v.writable("symlink", p); err != nil {
		return err
	}
	if target == "" || len(target) > dirtree.MaxTarget || strings.IndexByte(target, 0) >= 0 {
		return errorf("symlink", p, syscall.EINVAL, errors.New("bad target"))
	}
	r, err := v.resolve("symlink", p, false)
	if err != nil {
		return err
	}
	_, err = v.create("symlink", p, r, dirtree.Entry{Mode: dirtree.TypeLink | 0o777, Target: target}, createOpts{})
	return err
}

// Readlink returns a symlink's target.
func (v *Volume) Readlink(p string) (string, error) {
	v.f.mu.Lock()
	defer v.f.mu.Unlock()
	x, err := v.lookup("readlink", p, false)
	if err != nil {
		return "", err
	}
	if x.ent.Type() != dirtree.TypeLink {
		return "", errorf("readlink", p, syscall.EINVAL, errors.New("not a symlink"))
	}
	return x.ent.Target, nil
}

// Mknod creates a fifo, socket or device node; mode holds the type bits
// and the permission bits (see Mkdir for the options).
func (v *Volume) Mknod(p string, mode uint32, dev uint64, opts ...CreateOption) error {
	v.f.mu.Lock()
	defer v.f.mu.Unlock()
	if err := v.writable("mknod", p); err != nil {
		return err
	}
	switch mode & dirtree.TypeMask {
	case dirtree.TypeFifo, dirtree.TypeSock, dirtree.TypeChar, dirtree.TypeBlk:
	case 0, dirtree.TypeReg:
		mode = dirtree.TypeReg | mode&0o7777
		dev = 0
	default:
		return errorf("mknod", p, syscall.EINVAL, errors.New("unsupported file type"))
	}
	r, err := v.resolve("mknod", p, false)
	if err != nil {
		return err
	}
	_, err = v.create("mknod", p, r, dirtree.Entry{Mode: mode, Rdev: dev}, applyCreateOptions(opts))
	return err
}

// Remove removes a file, or an empty directory.
func (v *Volume) Remove(p string) error {
	v.f.mu.Lock()
	defer v.f.mu.Unlock()
	if err := v.writable("remove", p); err != nil {
		return err
	}
	if dotLast(p) {
		return errorf("remove", p, syscall.EINVAL, errors.New(`cannot remove "." or ".."`))
	}
	r, err := v.resolve("remove", p, false)
	if err != nil {
		return err
	}
	if r.x == nil {
		return errorf("remove", p, syscall.ENOENT, nil)
	}
	if r.x == v.root {
		return errorf("remove", p, syscall.EBUSY, errors.New("the root"))
	}
	if r.x.isDir() {
		if r.x.ent.Dir.Count > 0 {
			return errorf("remove", p, syscall.ENOTEMPTY, nil)
		}
	}
	return wrapIO("remove", p, v.unlinkName(r.dir, r.name, r.x))
}

// unlinkName removes name (naming x) from dir.
func (v *Volume) unlinkName(dir *inode, name string, x *inode) error {
	d, err := dirtree.Delete(v.f.dirs, dir.ent.Dir, name)
	if err != nil {
		return err
	}
	dir.ent.Dir = d
	delete(dir.kids, name)
	delete(dir.dirtyKids, name2inode(dir, x))
	if x.isDir() {
		dir.ent.Subdirs--
	}
	if x.linkID != 0 {
		v.addLinks(dir, -1)
	} else if x.ent.Links > 0 {
		v.addLinks(dir, -int64(x.ent.Links))
	}
	dir.stamp(true)
	return v.dropName(x)
}

// name2inode returns x if it is dir's own child inode (not a shared link inode).
func name2inode(dir, x *inode) *inode {
	if x.parent == dir {
		return x
	}
	return nil
}

// dropName handles x losing one of its names.
func (v *Volume) dropName(x *inode) error {
	if x.linkID != 0 {
		x.ent.Nlink--
		x.stamp(false)
		if x.ent.Nlink > 0 {
			return nil
		}
		delete(v.links, x.linkID)
		v.dropSide(x)
		if x.opens > 0 {
			return v.orphanize(x)
		}
		x.removed = true
		return nil
	}
	x.parent = nil
	if x.opens > 0 {
		return v.orphanize(x)
	}
	x.removed = true
	return nil
}

// orphanize keeps an unlinked but open inode in the orphan table until it
// is closed, so its data survives commits.
func (v *Volume) orphanize(x *inode) error {
	if x.linkID != 0 {
		// dropName removed its link-table entry; the orphan table holds it now.
		x.ent.Local = x.ino() // keep the number it was seen with
		x.linkID = 0
		x.prefix = 0
	} else {
		x.ent.Local = x.ino()
		x.prefix = 0
	}
	x.parent = nil
	x.orphan = v.meta.nextLink
	v.meta.nextLink++
	v.orphans[x] = true
	x.dirty = false
	x.touch()
	return nil
}

// closeInode drops one open handle of x, releasing an orphan's data.
func (v *Volume) closeInode(x *inode) {
	x.opens--
	v.opens--
	if x.opens == 0 && x.orphan != 0 {
		delete(v.orphans, x)
		v.dropSide(x)
		x.removed = true
	}
}

// addLinks adjusts the hard-link-name counts of dir and its ancestors.
func (v *Volume) addLinks(dir *inode, delta int64) {
	for x := dir; x != nil; x = x.parent {
		x.ent.Links = uint64(int64(x.ent.Links) + delta)
		x.touch()
	}
}

// Chmod changes the permission bits.
func (v *Volume) Chmod(p string, mode uint32) error {
	return v.setattr("chmod", p, true, chmodInode(mode))
}

func chmodInode(mode uint32) func(*inode) error {
	return func(x *inode) error {
		x.ent.Mode = x.ent.Mode&dirtree.TypeMask | mode&0o7777
		chmodACL(&x.ent, mode)
		return nil
	}
}

// Chown changes the owner and group; -1 leaves one unchanged.
func (v *Volume) Chown(p string, uid, gid int) error { return v.chown("chown", p, true, uid, gid) }

// Lchown is Chown without following a final symlink.
func (v *Volume) Lchown(p string, uid, gid int) error { return v.chown("lchown", p, false, uid, gid) }

func (v *Volume) chown(op, p string, follow bool, uid, gid int) error {
	return v.setattr(op, p, follow, chownInode(uid, gid))
}

func chownInode(uid, gid int) func(*inode) error {
	return func(x *inode) error {
		if uid >= 0 {
			x.ent.UID = uint32(uid)
		}
		if gid >= 0 {
			x.ent.GID = uint32(gid)
		}
		return nil
	}
}

// Chtimes sets the access and modification times; a zero time leaves one
// unchanged, as with os.Chtimes (so the instant 0001-01-01T00:00:00Z
// itself, the zero time.Time, can only be set with SetTimes). Times are
// kept to the nanosecond, from MinTime to MaxTime.
func (v *Volume) Chtimes(p string, atime, mtime time.Time) error {
	return v.setattr("chtimes", p, true, timesInode(omitZero(atime), omitZero(mtime)))
}

// Lchtimes is Chtimes without following a final symlink.
func (v *Volume) Lchtimes(p string, atime, mtime time.Time) error {
	return v.setattr("lchtimes", p, false, timesInode(omitZero(atime), omitZero(mtime)))
}

// SetTimes sets the access and modification times of p, not following a
// final symlink, as utimensat(2) with AT_SYMLINK_NOFOLLOW: a nil time is
// left unchanged (UTIME_OMIT), and every other one is set, the zero
// time.Time too.
func (v *Volume) SetTimes(p string, atime, mtime *time.Time) error {
	return v.setattr("utimes", p, false, timesInode(atime, mtime))
}

// omitZero is nil for the zero time (Chtimes' "unchanged"), else &t.
func omitZero(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

func timesInode(atime, mtime *time.Time) func(*inode) error {
	return func(x *inode) error {
		if atime != nil {
			x.ent.Atime = fromTime(*atime)
		}
		if mtime != nil {
			x.ent.Mtime = fromTime(*mtime)
		}
		return nil
	}
}

// Truncate changes a file's size.
func (v *Volume) Truncate(p string, size int64) error {
	return v.setattr("truncate", p, true, func(x *inode) error { return x.truncate(size) })
}

// setattr applies change to the inode p names and updates its ctime.
func (v *Volume) setattr(op, p string, follow bool, change func(*inode) error) error {
	v.f.mu.Lock()
	defer v.f.mu.Unlock()
	if err := v.writable(op, p); err != nil {
		return err
	}
	x, err := v.lookup(op, p, follow)
	if err != nil {
		return err
	}
	if err := change(x); err != nil {
		return wrapIO(op, p, err)
	}
	x.stamp(false)
	return nil
}

// Xattr flags for SetXattr.
const (
	XattrCreate  = 1 // fail with EEXIST if the attribute exists
	XattrReplace = 2 // fail with ENODATA if it does not
	// XattrClearSGID, with acl.AccessXattr, also clears the set-group-ID
	// bit: the caller is neither in the file's group nor privileged (the
	// kernel's FUSE_SETXATTR_ACL_KILL_SGID).
	XattrClearSGID = 1 << 8
)

// SetXattr sets an extended attribute, with Linux's limits and errors: a
// name of 1 to 255 bytes (ERANGE), a value of at most 64 KiB (E2BIG), and
// at most 64 KiB of names in a file's list of attributes, each with a NUL
// (ENOSPC when a new one would not fit: what listxattr(2) can return). The
// POSIX ACL attributes acl.AccessXattr and acl.DefaultXattr follow Linux's
// rules (package acl): the value must be a valid ACL, an access ACL sets
// the permission bits and is stored only when the mode cannot express it,
// and only a directory has a default ACL. A value longer than
// dirtree.XattrInlineMax is kept in a blob of its own (see docs/design.md).
func (v *Volume) SetXattr(p, name string, value []byte, flags int) error {
	if err := xattrName("setxattr", p, name); err != nil {
		return err
	}
	if len(value) > dirtree.MaxXattrValue {
		return errorf("setxattr", p, syscall.E2BIG, errors.New("attribute values are limited to 64 KiB"))
	}
	if name == acl.AccessXattr || name == acl.DefaultXattr {
		return v.setACL(p, name, value, flags)
	}
	return v.setattr("setxattr", p, false, func(x *inode) error {
		_, exists := x.ent.Xattr(name)
		if exists && flags&XattrCreate != 0 {
			return errorf("setxattr", p, syscall.EEXIST, nil)
		}
		if !exists && flags&XattrReplace != 0 {
			return errorf("setxattr", p, syscall.ENODATA, nil)
		}
		if err := listRoom(&x.ent, name, p); err != nil {
			return err
		}
		if x.ent.KeepInline(name, len(value)) {
			x.ent.PutXattr(dirtree.Inline(name, value), false)
			return nil
		}
		id, err := v.f.st.Put(context.Background(), value)
		if err != nil {
			return err
		}
		v.f.fresh[id] = true
		x.ent.PutXattr(dirtree.Xattr{Name: name, Blob: id, Size: len(value)}, false)
		return nil
	})
}

// xattrName fails with ERANGE, as Linux does before anything else, for an
// attribute name that is empty or longer than 255 bytes.
func xattrName(op, p, name string) error {
	if name == "" || len(name) > dirtree.MaxXattrName {
		return errorf(op, p, syscall.ERANGE, errors.New("attribute names are 1 to 255 bytes"))
	}
	return nil
}

// GetXattr returns an extended attribute (ENODATA if absent; ERANGE for a
// name no attribute can have).
func (v *Volume) GetXattr(p, name string) ([]byte, error) {
	if err := xattrName("getxattr", p, name); err != nil {
		return nil, err
	}
	v.f.mu.Lock()
	defer v.f.mu.Unlock()
	x, err := v.lookup("getxattr", p, false)
	if err != nil {
		return nil, err
	}
	if x.ent.Type() == dirtree.TypeLink && (name == acl.AccessXattr || name == acl.DefaultXattr) {
		return nil, errorf("getxattr", p, syscall.EOPNOTSUPP, errors.New("symlinks have no ACLs"))
	}
	a, ok := x.ent.Xattr(name)
	if !ok {
		return nil, errorf("getxattr", p, syscall.ENODATA, nil)
	}
	val, err := v.f.xattrValue(a)
	if err != nil {
		return nil, wrapIO("getxattr", p, err)
	}
	return append([]byte{}, val...), nil
}

// xattrValue returns the value of attribute a, reading its blob if it has
// one (through the data cache). The caller holds f.mu, so no commit
// deletes the blob meanwhile.
func (f *FS) xattrValue(a dirtree.Xattr) ([]byte, error) {
	if a.Blob.IsZero() {
		return a.Value, nil
	}
	b, err := f.Blob(a.Blob)
	if err != nil {
		return nil, err
	}
	if len(b) != a.Size {
		return nil, corrupt("attribute %s: blob %s holds %d bytes, its entry says %d", a.Name, a.Blob.Short(), len(b), a.Size)
	}
	return b, nil
}

// ListXattr returns the names of a file's extended attributes, sorted.
func (v *Volume) ListXattr(p string) ([]string, error) {
	v.f.mu.Lock()
	defer v.f.mu.Unlock()
	x, err := v.lookup("listxattr", p, false)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, a := range x.ent.Xattrs {
		names = append(names, a.Name)
	}
	return names, nil
}

// RemoveXattr removes an extended attribute (ENODATA if absent, ERANGE
// for a name no attribute can have; removing an ACL that is not there
// succeeds, as on ext4, and leaves the mode).
func (v *Volume) RemoveXattr(p, name string) error {
	if err := xattrName("removexattr", p, name); err != nil {
		return err
	}
	return v.setattr("removexattr", p, false, func(x *inode) error {
		if name == acl.AccessXattr || name == acl.DefaultXattr {
			return setACLEntry(&x.ent, name, nil, false, p)
		}
		if !x.ent.SetXattr(name, nil) {
			return errorf("removexattr", p, syscall.ENODATA, nil)
		}
		return nil
	})
}

// ReadDir lists a directory, sorted by name, and updates its access time
// as Options.Atime says.
func (v *Volume) ReadDir(p string) ([]*FileInfo, error) {
	v.f.mu.Lock()
	defer v.f.mu.Unlock()
	x, err := v.lookup("readdir", p, true)
	if err != nil {
		return nil, err
	}
	if !x.isDir() {
		return nil, errorf("readdir", p, syscall.ENOTDIR, nil)
	}
	list, err := x.list(0, -1)
	if err == nil {
		x.accessed()
	}
	return list, err
}

// list returns up to n entries of directory x from position pos (n < 0: all).
func (x *inode) list(pos int64, n int) ([]*FileInfo, error) {
	if err := x.syncTree(); err != nil {
		return nil, err
	}
	var out []*FileInfo
	it := x.v.f.dirs.Seek(x.ent.Dir, pos)
	for e, _, ok := it.Next(); ok && n != 0; e, _, ok = it.Next() {
		fi, err := x.entryInfo(e)
		if err != nil {
			return nil, err
		}
		out = append(out, fi)
		n--
	}
	return out, it.Err()
}

// entryInfo describes entry e of directory x without loading it as an inode
// unless it is loaded already.
func (x *inode) entryInfo(e dirtree.Entry) (*FileInfo, error) {
	if k, ok := x.kids[e.Name]; ok {
		if err := k.flushBuf(); err != nil {
			return nil, err
		}
		return k.info(e.Name), nil
	}
	if e.Link != 0 {
		k, err := x.v.linkInode(e.Link)
		if err != nil {
			return nil, err
		}
		if err := k.flushBuf(); err != nil {
			return nil, err
		}
		return k.info(e.Name), nil
	}
	tmp := inode{v: x.v, parent: x, ent: e, prefix: x.prefix}
	if e.Scope != 0 {
		p, err := x.v.scopePrefix(x.prefix, e.Scope)
		if err != nil {
			return nil, err
		}
		tmp.prefix = p
	}
	return tmp.info(e.Name), nil
}
