package cowfs

import (
	"context"
	"errors"
	"syscall"
)

// errNoInode is the reason FindInode and Parent give for ESTALE.
var errNoInode = errors.New("no such node in the volume")

// FindInode returns a handle on the node numbered ino, and its description,
// for a frontend that is asked for a node by number alone (a file handle
// that outlived the frontend's own record of it). A node that is loaded
// (one a handle or an open file holds, an unlinked open file too) is found
// at once; any other is searched for in the volume's directories, breadth
// first, which takes time in proportion to the entries before it. A number
// that names no node is ESTALE.
func (v *Volume) FindInode(ctx context.Context, ino uint64) (*Inode, *FileInfo, error) {
	const op = "findinode"
	if h, fi, err := v.findLoaded(op, ino); h != nil || err != nil {
		return h, fi, err
	}
	// The search walks a picture of the tree, unlocked; the node it finds
	// is then taken by its path, which may have changed meanwhile: a few
	// tries, then give up.
	for try := 0; try < 3; try++ {
		p, err := v.searchIno(ctx, ino)
		if err != nil {
			return nil, nil, err
		}
		if h, fi, err := v.takeAt(op, p, ino); h != nil || err != nil {
			return h, fi, err
		}
	}
	return nil, nil, errorf(op, "", syscall.ESTALE, errNoInode)
}

// findLoaded returns a handle on the loaded node numbered ino, if there is
// one: below the root, in the link table or among the orphans.
func (v *Volume) findLoaded(op string, ino uint64) (*Inode, *FileInfo, error) {
	v.f.mu.Lock()
	defer v.f.mu.Unlock()
	if err := v.f.check(op); err != nil {
		return nil, nil, err
	}
	if v.closed {
		return nil, nil, errorf(op, "", syscall.EBADF, errors.New("volume closed"))
	}
	x := loadedIno(v.root, ino)
	for _, y := range v.links {
		if x == nil && !y.removed && y.ino() == ino {
			x = y
		}
	}
	for y := range v.orphans {
		if x == nil && !y.removed && y.ino() == ino {
			x = y
		}
	}
	if x == nil {
		return nil, nil, nil
	}
	return v.taken(op, x)
}

// loadedIno returns the loaded inode numbered ino at or below x, or nil.
func loadedIno(x *inode, ino uint64) *inode {
	if !x.removed && x.linkID == 0 && x.ino() == ino {
		return x
	}
	for _, k := range x.kids {
		if y := loadedIno(k, ino); y != nil {
			return y
		}
	}
	return nil
}

// taken returns a handle on x and its description. The caller holds f.mu.
func (v *Volume) taken(op string, x *inode) (*Inode, *FileInfo, error) {
	p := x.path()
	if err := x.flushBuf(); err != nil {
		return nil, nil, wrapIO(op, p, err)
	}
	return v.handle(x), x.info(baseName(p)), nil
}

// takeAt returns a handle on the node at path p if it is still numbered
// ino; nil (and no error) if p names another node or none now.
func (v *Volume) takeAt(op, p string, ino uint64) (*Inode, *FileInfo, error) {
	v.f.mu.Lock()
	defer v.f.mu.Unlock()
	if v.closed {
		return nil, nil, errorf(op, "", syscall.EBADF, errors.New("volume closed"))
	}
	x, err := v.lookup(op, p, false)
	if err != nil || x.ino() != ino {
		return nil, nil, nil
	}
	return v.taken(op, x)
}

// searchIno returns the path of the node numbered ino in the volume's
// tree as it is now, searched breadth first; ESTALE if there is none.
func (v *Volume) searchIno(ctx context.Context, ino uint64) (string, error) {
	const op = "findinode"
	root, err := v.Root()
	if err != nil {
		return "", err
	}
	if root.Info().Stat().Ino == ino {
		return ".", nil
	}
	queue := []*Node{root}
	for len(queue) > 0 {
		if err := ctx.Err(); err != nil {
			return "", wrapIO(op, "", err)
		}
		dir := queue[0]
		queue = queue[1:]
		for k, err := range dir.Children() {
			if err != nil {
				return "", err
			}
			if k.Info().Stat().Ino == ino {
				return k.Path(), nil
			}
			if k.IsDir() {
				queue = append(queue, k)
			}
		}
	}
	return "", errorf(op, "", syscall.ESTALE, errNoInode)
}
