package cowfs

import (
	"errors"
	"strings"
	"syscall"

	"github.com/cowfs/cowfs/internal/dirtree"
)

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

// resolvePath is resolve without the trailing-slash rule.
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

// parentOrSelf is x's parent directory, or x itself for the root (and for
// an inode without a parent: a link-table or orphan inode).
func (x *inode) parentOrSelf() *inode {
	if x.parent != nil {
		return x.parent
	}
	return x
}

// splitPath returns p's names, with empty ones (from "/" at either end or
// doubled) dropped.
func splitPath(p string) []string {
	var parts []string
	for _, s := range strings.Split(p, "/") {
		if s != "" {
			parts = append(parts, s)
		}
	}
	return parts
}

// dotLast reports whether p ends in "." or "..", which rmdir, unlink and
// rename refuse (EINVAL).
func dotLast(p string) bool {
	parts := splitPath(p)
	return len(parts) > 0 && (parts[len(parts)-1] == "." || parts[len(parts)-1] == "..")
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
