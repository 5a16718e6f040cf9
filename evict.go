package cowfs

// keep reports whether x holds something its entry in the tree lacks, or is
// in use: such an inode must stay loaded.
func (x *inode) keep() bool {
	return x.dirty || x.opens > 0 || x.pins > 0 || x.wbuf != nil || x.pending > 0 || len(x.dirtyKids) > 0
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

// evictLocked drops the inodes no volume needs loaded (Volume.evictLocked).
func (f *FS) evictLocked() {
	for _, v := range f.vols {
		v.evictLocked()
	}
}
