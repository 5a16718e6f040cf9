// Package permcases is a table of permission cases in the style of
// pjdfstest: a tree made as root, one operation done as some user, and
// what came of it (the errno, and the type, mode and owner of every path
// the case names). The same cases run on Linux itself (a tmpfs: the
// reference), through a cowfs mount (RunOS on either) and through any other
// target that implements Runner (the 9P server, the engine's Go API), and
// Compare reports where a target's outcomes differ from the reference's.
package permcases

import (
	"fmt"
	"slices"
	"strings"
	"syscall"

	"github.com/cowfs/cowfs/acl"
)

// User is whom an operation runs as: a user ID, a primary group, the
// supplementary groups and the umask of its process.
type User struct {
	UID, GID uint32
	Groups   []uint32 // supplementary groups
	Umask    uint32
}

// The users of the cases. Alice and Bob have no entry in the user
// database, so a 9P server that takes a user's groups from it gives each
// exactly the group NoGroup, as their processes have here.
var (
	Root  = User{UID: 0, GID: 0, Umask: 0o022}
	Alice = User{UID: 4242, GID: NoGroup, Umask: 0o022}
	Bob   = User{UID: 4343, GID: NoGroup, Umask: 0o022}
)

// Groups of the cases' files: NoGroup is Alice's and Bob's (overflowgid,
// nogroup), Other neither's.
const (
	NoGroup = 65534
	Other   = 4000
)

// String names u in case names: "root", "u4242", with "-g"/"-m" parts
// for what differs from the predefined users.
func (u User) String() string {
	s := "root"
	if u.UID != 0 {
		s = fmt.Sprintf("u%d", u.UID)
	}
	if u.UID != 0 && u.GID != NoGroup {
		s += fmt.Sprintf("-g%d", u.GID)
	}
	for _, g := range u.Groups {
		s += fmt.Sprintf("+%d", g)
	}
	if u.Umask != 0o022 {
		s += fmt.Sprintf("-m%03o", u.Umask)
	}
	return s
}

// Kind is the type of a Node.
type Kind int

// Kinds of nodes.
const (
	File Kind = iota
	Dir
	Symlink
	Fifo
)

// Node is one entry a case's setup makes, as root, in the order given.
type Node struct {
	Path    string // below the case's directory
	Kind    Kind
	Mode    uint32 // permission and set-ID bits (07777); unused for symlinks
	UID     uint32
	GID     uint32
	Target  string            // a symlink's
	Content string            // a file's
	Xattrs  map[string]string // extended attributes ("user." ones)
	ACL     []byte            // the access ACL's xattr form, or nil
	Default []byte            // a directory's default ACL's xattr form, or nil
}

// OpKind is an operation.
type OpKind string

// Operations. Paths are below the case's directory; Op says which fields
// each uses.
const (
	Open        OpKind = "open"        // open(Path, Flags, Mode), then close
	Mkdir       OpKind = "mkdir"       // mkdir(Path, Mode)
	Mkfifo      OpKind = "mkfifo"      // mknod(Path, S_IFIFO|Mode)
	MkSymlink   OpKind = "symlink"     // symlink(Target, Path)
	Link        OpKind = "link"        // link(Path, Path2)
	Unlink      OpKind = "unlink"      // unlink(Path)
	Rmdir       OpKind = "rmdir"       // rmdir(Path)
	Rename      OpKind = "rename"      // rename(Path, Path2)
	Chmod       OpKind = "chmod"       // chmod(Path, Mode), following a symlink
	Chown       OpKind = "chown"       // lchown(Path, UID, GID); -1 keeps
	Truncate    OpKind = "truncate"    // truncate(Path, 0)
	Write       OpKind = "write"       // open(Path, O_WRONLY), write 1 byte at 0, close
	UtimesNow   OpKind = "utimes-now"  // utimensat(Path, NULL)
	UtimesSet   OpKind = "utimes-set"  // utimensat(Path, {2001-02-03, 2001-02-03})
	SetXattr    OpKind = "setxattr"    // lsetxattr(Path, Name, Value)
	RemoveXattr OpKind = "removexattr" // lremovexattr(Path, Name)
	GetXattr    OpKind = "getxattr"    // lgetxattr(Path, Name)
	SetACL      OpKind = "setacl"      // setxattr(Path, system.posix_acl_access, Value)
	Lstat       OpKind = "stat"        // lstat(Path)
	Readdir     OpKind = "readdir"     // open(Path, O_RDONLY|O_DIRECTORY), getdents, close
	Access      OpKind = "access"      // faccessat(Path, Mode) (R_OK 4, W_OK 2, X_OK 1)
)

// Op is the operation a case's user does.
type Op struct {
	Kind     OpKind
	Path     string
	Path2    string // Link's and Rename's new path
	Target   string // MkSymlink's
	Flags    int    // Open's
	Mode     uint32 // Open's (with O_CREAT), Mkdir's, Mkfifo's, Chmod's, Access's
	UID, GID int    // Chown's; -1 leaves it
	Name     string // the attribute of SetXattr, RemoveXattr, GetXattr
	Value    []byte // SetXattr's and SetACL's
}

// String describes o briefly.
func (o Op) String() string {
	s := string(o.Kind) + " " + o.Path
	switch o.Kind {
	case Open:
		s += " " + openFlags(o.Flags)
		if o.Flags&syscall.O_CREAT != 0 {
			s += fmt.Sprintf(" %04o", o.Mode)
		}
	case Mkdir, Mkfifo, Chmod:
		s += fmt.Sprintf(" %04o", o.Mode)
	case Access:
		s += fmt.Sprintf(" %o", o.Mode)
	case Link, Rename:
		s += " " + o.Path2
	case MkSymlink:
		s += " -> " + o.Target
	case Chown:
		s += fmt.Sprintf(" %d:%d", o.UID, o.GID)
	case SetXattr, RemoveXattr, GetXattr:
		s += " " + o.Name
	}
	return s
}

func openFlags(fl int) string {
	var parts []string
	switch fl & syscall.O_ACCMODE {
	case syscall.O_RDONLY:
		parts = append(parts, "O_RDONLY")
	case syscall.O_WRONLY:
		parts = append(parts, "O_WRONLY")
	case syscall.O_RDWR:
		parts = append(parts, "O_RDWR")
	}
	for _, f := range []struct {
		bit  int
		name string
	}{{syscall.O_CREAT, "O_CREAT"}, {syscall.O_EXCL, "O_EXCL"}, {syscall.O_TRUNC, "O_TRUNC"}, {syscall.O_DIRECTORY, "O_DIRECTORY"}} {
		if fl&f.bit != 0 {
			parts = append(parts, f.name)
		}
	}
	return strings.Join(parts, "|")
}

// Case is one test: Nodes made as root below a fresh directory (mode 0755,
// root's), then Op done as User.
type Case struct {
	Name  string
	User  User
	Nodes []Node
	Op    Op
}

// Paths are the paths c names (its nodes' and its operation's), sorted,
// each once: the ones its Outcome describes.
func (c Case) Paths() []string {
	var ps []string
	for _, n := range c.Nodes {
		ps = append(ps, n.Path)
	}
	for _, p := range []string{c.Op.Path, c.Op.Path2} {
		if p != "" {
			ps = append(ps, p)
		}
	}
	slices.Sort(ps)
	return slices.Compact(ps)
}

// Stat is what an outcome shows of a path: nothing about times or inode
// numbers.
type Stat struct {
	Exists   bool
	Mode     uint32 // type and permission bits, set-ID bits included
	UID, GID uint32
	Size     int64  // a regular file's; 0 for the others
	ACL      string // the access ACL's xattr form, "" for none
	Default  string // the default ACL's xattr form, "" for none
}

// NewStat describes a file that exists with the given mode, owner and size,
// reading its ACL attributes (not a symlink's) with getACL, which returns ""
// for one the file does not have.
func NewStat(mode, uid, gid uint32, size int64, getACL func(name string) (string, error)) (Stat, error) {
	s := Stat{Exists: true, Mode: mode, UID: uid, GID: gid}
	switch mode & syscall.S_IFMT {
	case syscall.S_IFREG:
		s.Size = size
	case syscall.S_IFLNK:
		return s, nil
	}
	var err error
	if s.ACL, err = getACL(acl.AccessXattr); err != nil {
		return s, err
	}
	s.Default, err = getACL(acl.DefaultXattr)
	return s, err
}

// String describes s as ls -l would, roughly.
func (s Stat) String() string {
	if !s.Exists {
		return "absent"
	}
	t := "?"
	switch s.Mode & syscall.S_IFMT {
	case syscall.S_IFREG:
		t = "-"
	case syscall.S_IFDIR:
		t = "d"
	case syscall.S_IFLNK:
		t = "l"
	case syscall.S_IFIFO:
		t = "p"
	}
	str := fmt.Sprintf("%s%04o %d:%d", t, s.Mode&0o7777, s.UID, s.GID)
	if s.Mode&syscall.S_IFMT == syscall.S_IFREG {
		str += fmt.Sprintf(" size %d", s.Size)
	}
	if s.ACL != "" {
		str += " acl " + describeACL(s.ACL)
	}
	if s.Default != "" {
		str += " default " + describeACL(s.Default)
	}
	return str
}

// describeACL shows an ACL's entries as getfacl's short form does.
func describeACL(b string) string {
	a, err := acl.Decode([]byte(b))
	if err != nil {
		return fmt.Sprintf("%x(%v)", b, err)
	}
	var parts []string
	for _, e := range a {
		tag := map[acl.Tag]string{acl.UserObj: "u:", acl.User: "u:", acl.GroupObj: "g:", acl.Group: "g:", acl.Mask: "m:", acl.Other: "o:"}[e.Tag]
		if e.Tag == acl.User || e.Tag == acl.Group {
			tag += fmt.Sprint(e.ID)
		}
		perm := []byte("---")
		for i, bit := range []uint16{acl.Read, acl.Write, acl.Execute} {
			if e.Perm&bit != 0 {
				perm[i] = "rwx"[i]
			}
		}
		parts = append(parts, tag+":"+string(perm))
	}
	return strings.Join(parts, ",")
}

// Outcome is what came of a case: the operation's errno (0: it succeeded)
// and every path the case names, as root lstat's it afterwards.
type Outcome struct {
	Errno syscall.Errno
	After map[string]Stat
}

// String shows o in one line, its paths sorted.
func (o Outcome) String() string {
	s := "ok"
	if o.Errno != 0 {
		s = errnoName(o.Errno)
	}
	ps := make([]string, 0, len(o.After))
	for p := range o.After {
		ps = append(ps, p)
	}
	slices.Sort(ps)
	for _, p := range ps {
		s += fmt.Sprintf("; %s %v", p, o.After[p])
	}
	return s
}

// equal reports whether two outcomes are the same.
func (o Outcome) equal(p Outcome) bool {
	if o.Errno != p.Errno || len(o.After) != len(p.After) {
		return false
	}
	for k, v := range o.After {
		if w, ok := p.After[k]; !ok || w != v {
			return false
		}
	}
	return true
}

var errnoNames = map[syscall.Errno]string{
	syscall.EPERM: "EPERM", syscall.ENOENT: "ENOENT", syscall.EACCES: "EACCES", syscall.EEXIST: "EEXIST",
	syscall.ENOTDIR: "ENOTDIR", syscall.EISDIR: "EISDIR", syscall.EINVAL: "EINVAL", syscall.ENOTEMPTY: "ENOTEMPTY",
	syscall.EXDEV: "EXDEV", syscall.ENODATA: "ENODATA", syscall.EOPNOTSUPP: "EOPNOTSUPP", syscall.EROFS: "EROFS",
	syscall.EBADF: "EBADF", syscall.ELOOP: "ELOOP", syscall.ENXIO: "ENXIO", syscall.ETXTBSY: "ETXTBSY",
	syscall.ENOSYS: "ENOSYS", syscall.EIO: "EIO",
}

func errnoName(e syscall.Errno) string {
	if n, ok := errnoNames[e]; ok {
		return n
	}
	return fmt.Sprintf("errno %d (%v)", int(e), e)
}
