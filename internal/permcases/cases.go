package permcases

import (
	"fmt"
	"slices"
	"syscall"

	"github.com/cowfs/cowfs/acl"
)

// The attribute the cases' files carry and set.
const (
	xattrName  = "user.test"
	xattrValue = "v"
)

// owner is a node's owner and group.
type owner struct{ uid, gid uint32 }

func (o owner) String() string { return fmt.Sprintf("%d:%d", o.uid, o.gid) }

func file(p string, mode uint32, o owner) Node {
	return Node{Path: p, Kind: File, Mode: mode, UID: o.uid, GID: o.gid, Content: "data", Xattrs: map[string]string{xattrName: xattrValue}}
}

// plain is a file without attributes.
func plain(p string, mode uint32, o owner) Node {
	return Node{Path: p, Kind: File, Mode: mode, UID: o.uid, GID: o.gid, Content: "data"}
}

func dir(p string, mode uint32, o owner) Node {
	return Node{Path: p, Kind: Dir, Mode: mode, UID: o.uid, GID: o.gid}
}

var users = []User{Root, Alice, Bob}

// namedACL is an access ACL that grants Bob read (it is no mode: setting it
// is stored, and it needs the owner's right).
var namedACL = acl.ACL{
	{Tag: acl.UserObj, Perm: 6},
	{Tag: acl.User, Perm: 4, ID: Bob.UID},
	{Tag: acl.GroupObj, Perm: 4},
	{Tag: acl.Mask, Perm: 4},
	{Tag: acl.Other, Perm: 0},
}.Encode()

// Cases returns the table: every case has a distinct name.
func Cases() []Case {
	var cs []Case
	seen := map[string]bool{}
	// A name says all a case is: two of one name (a chmod adding a bit
	// the mode has) are one case.
	add := func(c Case) {
		if !seen[c.Name] {
			seen[c.Name] = true
			cs = append(cs, c)
		}
	}
	fileCases(add)
	dirCases(add)
	aclCases(add)
	umaskCases(add)
	otherTypeCases(add)
	return cs
}

// fileOps are the operations on an existing file f (or directory) whose
// outcome its own mode and owner decide.
func fileOps(p string, o owner, mode uint32) []Op {
	return []Op{
		{Kind: Open, Path: p, Flags: syscall.O_RDONLY},
		{Kind: Open, Path: p, Flags: syscall.O_WRONLY},
		{Kind: Open, Path: p, Flags: syscall.O_RDWR},
		{Kind: Open, Path: p, Flags: syscall.O_WRONLY | syscall.O_TRUNC},
		{Kind: Open, Path: p, Flags: syscall.O_WRONLY | syscall.O_CREAT | syscall.O_EXCL, Mode: 0o644},
		{Kind: Truncate, Path: p},
		{Kind: Write, Path: p},
		{Kind: Chmod, Path: p, Mode: 0o640},
		{Kind: Chmod, Path: p, Mode: mode | syscall.S_ISGID},
		{Kind: Chmod, Path: p, Mode: mode | syscall.S_ISUID},
		{Kind: Chown, Path: p, UID: int(Bob.UID), GID: -1},
		{Kind: Chown, Path: p, UID: int(o.uid), GID: -1},
		{Kind: Chown, Path: p, UID: -1, GID: NoGroup},
		{Kind: Chown, Path: p, UID: -1, GID: Other},
		{Kind: UtimesNow, Path: p},
		{Kind: UtimesSet, Path: p},
		{Kind: SetXattr, Path: p, Name: xattrName, Value: []byte("new")},
		{Kind: RemoveXattr, Path: p, Name: xattrName},
		{Kind: GetXattr, Path: p, Name: xattrName},
		{Kind: SetACL, Path: p, Value: namedACL},
		{Kind: Access, Path: p, Mode: 4},
		{Kind: Access, Path: p, Mode: 2},
		{Kind: Access, Path: p, Mode: 1},
	}
}

// fileCases: a file f of the case's directory, of every mode and owner,
// and everything done to it.
func fileCases(add func(Case)) {
	modes := []uint32{0o600, 0o644, 0o660, 0o070, 0o755, 0o4755, 0o2745, 0o6777}
	owners := []owner{{Alice.UID, NoGroup}, {Alice.UID, Other}, {0, NoGroup}}
	for _, mode := range modes {
		for _, o := range owners {
			for _, u := range users {
				// Root may do all but execute without an x bit
				// and keep set-ID bits: a few modes show it.
				if u.UID == 0 && !slices.Contains([]uint32{0o644, 0o2745, 0o6777}, mode) {
					continue
				}
				for _, op := range fileOps("f", o, mode) {
					add(Case{
						Name:  fmt.Sprintf("file/%04o-%v/%v/%v", mode, o, u, op),
						User:  u,
						Nodes: []Node{file("f", mode, o)},
						Op:    op,
					})
				}
			}
		}
	}
}

// dirCases: a directory d of every mode and owner holding a file f and a
// directory sub of a victim owner, a second directory e (0777, root's)
// holding x, and the operations d's mode decides: entries made, removed and
// renamed (sticky directories: the victim's owner counts), lookups through
// d, listing d, and a directory moved between parents (which needs write
// on the moved one, for its "..").
func dirCases(add func(Case)) {
	modes := []uint32{0o755, 0o777, 0o775, 0o757, 0o733, 0o744, 0o1777, 0o1733, 0o2777}
	// Alice and Bob are others to a directory of root:4000; Alice owns
	// one of 4242:65534 and Bob is in its group.
	owners := []owner{{0, Other}, {Alice.UID, NoGroup}}
	victims := []uint32{Alice.UID, Bob.UID} // root's count as Bob's
	for _, mode := range modes {
		for _, o := range owners {
			for _, u := range users {
				// Root passes every check but the sticky bit's.
				if u.UID == 0 && mode != 0o755 && mode != 0o1777 {
					continue
				}
				common := []Op{
					{Kind: Open, Path: "d/new", Flags: syscall.O_WRONLY | syscall.O_CREAT | syscall.O_EXCL, Mode: 0o666},
					{Kind: Open, Path: "d/new", Flags: syscall.O_WRONLY | syscall.O_CREAT | syscall.O_EXCL, Mode: 0o2775},
					{Kind: Open, Path: "d/new", Flags: syscall.O_WRONLY | syscall.O_CREAT | syscall.O_EXCL, Mode: 0o2745},
					{Kind: Mkdir, Path: "d/new", Mode: 0o777},
					{Kind: Mkfifo, Path: "d/new", Mode: 0o644},
					{Kind: MkSymlink, Path: "d/new", Target: "f"},
					{Kind: Lstat, Path: "d/f"},
					{Kind: Open, Path: "d/f", Flags: syscall.O_RDONLY},
					{Kind: Readdir, Path: "d"},
					{Kind: Access, Path: "d", Mode: 3},
					{Kind: Chmod, Path: "d", Mode: mode | syscall.S_ISGID},
					{Kind: Chmod, Path: "d", Mode: 0o700},
				}
				victimOps := []Op{
					{Kind: Unlink, Path: "d/f"},
					{Kind: Rmdir, Path: "d/sub"},
					{Kind: Rename, Path: "d/f", Path2: "d/g"},
					{Kind: Rename, Path: "d/f", Path2: "e/g"},
					{Kind: Rename, Path: "e/x", Path2: "d/x"},
					{Kind: Rename, Path: "e/x", Path2: "d/f"},
					{Kind: Rename, Path: "d/sub", Path2: "e/sub"},
					{Kind: Rename, Path: "d/sub", Path2: "d/sub2"},
					{Kind: Link, Path: "d/f", Path2: "d/l"},
				}
				for _, v := range victims {
					nodes := []Node{
						dir("d", mode, o),
						plain("d/f", 0o644, owner{v, NoGroup}),
						dir("d/sub", 0o755, owner{v, NoGroup}),
						dir("e", 0o777, owner{0, 0}),
						plain("e/x", 0o644, owner{v, NoGroup}),
					}
					ops := victimOps
					if v == Bob.UID {
						ops = append(common, victimOps...)
					}
					for _, op := range ops {
						add(Case{
							Name:  fmt.Sprintf("dir/%04o-%v/victim-%d/%v/%v", mode, o, v, u, op),
							User:  u,
							Nodes: nodes,
							Op:    op,
						})
					}
				}
			}
		}
	}
}

// aclCases: files whose access ACL decides who may open them, and
// directories whose default ACL decides the mode of what is made in them.
func aclCases(add func(Case)) {
	acls := map[string]acl.ACL{
		"alice-rw":     {{Tag: acl.UserObj, Perm: 6}, {Tag: acl.User, Perm: 6, ID: Alice.UID}, {Tag: acl.GroupObj, Perm: 0}, {Tag: acl.Mask, Perm: 6}, {Tag: acl.Other, Perm: 0}},
		"alice-masked": {{Tag: acl.UserObj, Perm: 6}, {Tag: acl.User, Perm: 6, ID: Alice.UID}, {Tag: acl.GroupObj, Perm: 0}, {Tag: acl.Mask, Perm: 4}, {Tag: acl.Other, Perm: 0}},
		"nogroup-rw":   {{Tag: acl.UserObj, Perm: 6}, {Tag: acl.GroupObj, Perm: 0}, {Tag: acl.Group, Perm: 6, ID: NoGroup}, {Tag: acl.Mask, Perm: 6}, {Tag: acl.Other, Perm: 0}},
		"other-rwx":    {{Tag: acl.UserObj, Perm: 7}, {Tag: acl.GroupObj, Perm: 0}, {Tag: acl.Group, Perm: 7, ID: Other}, {Tag: acl.Mask, Perm: 7}, {Tag: acl.Other, Perm: 4}},
	}
	for _, name := range []string{"alice-rw", "alice-masked", "nogroup-rw", "other-rwx"} {
		a := acls[name]
		for _, o := range []owner{{0, Other}, {Alice.UID, Other}} {
			n := file("f", a.Mode()|syscall.S_ISGID, o)
			n.ACL = a.Encode()
			for _, u := range users {
				ops := []Op{
					{Kind: Open, Path: "f", Flags: syscall.O_RDONLY},
					{Kind: Open, Path: "f", Flags: syscall.O_WRONLY},
					{Kind: Write, Path: "f"},
					{Kind: Truncate, Path: "f"},
					{Kind: Chmod, Path: "f", Mode: 0o600},
					{Kind: Chmod, Path: "f", Mode: 0o2770},
					{Kind: SetACL, Path: "f", Value: namedACL},
					{Kind: SetACL, Path: "f", Value: acl.FromMode(0o640).Encode()},
					{Kind: SetXattr, Path: "f", Name: xattrName, Value: []byte("new")},
					{Kind: Access, Path: "f", Mode: 6},
				}
				for _, op := range ops {
					add(Case{Name: fmt.Sprintf("acl/%s-%v/%v/%v", name, o, u, op), User: u, Nodes: []Node{n}, Op: op})
				}
			}
		}
	}
	def := acl.ACL{{Tag: acl.UserObj, Perm: 7}, {Tag: acl.User, Perm: 7, ID: Bob.UID}, {Tag: acl.GroupObj, Perm: 5}, {Tag: acl.Mask, Perm: 7}, {Tag: acl.Other, Perm: 5}}
	for _, mode := range []uint32{0o777, 0o755} {
		d := dir("d", mode, owner{0, 0})
		d.Default = def.Encode()
		if mode == 0o755 {
			d.ACL = acl.ACL{{Tag: acl.UserObj, Perm: 7}, {Tag: acl.User, Perm: 7, ID: Bob.UID}, {Tag: acl.GroupObj, Perm: 5}, {Tag: acl.Mask, Perm: 7}, {Tag: acl.Other, Perm: 5}}.Encode()
		}
		for _, u := range users {
			ops := []Op{
				{Kind: Open, Path: "d/new", Flags: syscall.O_WRONLY | syscall.O_CREAT | syscall.O_EXCL, Mode: 0o666},
				{Kind: Open, Path: "d/new", Flags: syscall.O_WRONLY | syscall.O_CREAT | syscall.O_EXCL, Mode: 0o640},
				{Kind: Mkdir, Path: "d/new", Mode: 0o777},
				{Kind: Mkdir, Path: "d/new", Mode: 0o700},
				{Kind: Mkfifo, Path: "d/new", Mode: 0o666},
			}
			for _, op := range ops {
				add(Case{Name: fmt.Sprintf("defacl/%04o/%v/%v", mode, u, op), User: u, Nodes: []Node{d}, Op: op})
			}
		}
	}
}

// umaskCases: what the umask takes from new entries' modes.
func umaskCases(add func(Case)) {
	for _, mask := range []uint32{0, 0o022, 0o077, 0o007} {
		u := Alice
		u.Umask = mask
		ops := []Op{
			{Kind: Open, Path: "d/new", Flags: syscall.O_WRONLY | syscall.O_CREAT | syscall.O_EXCL, Mode: 0o666},
			{Kind: Open, Path: "d/new", Flags: syscall.O_WRONLY | syscall.O_CREAT | syscall.O_EXCL, Mode: 0o4777},
			{Kind: Mkdir, Path: "d/new", Mode: 0o777},
			{Kind: Mkdir, Path: "d/new", Mode: 0o1777},
			{Kind: Mkfifo, Path: "d/new", Mode: 0o666},
		}
		for _, dmode := range []uint32{0o777, 0o2777} {
			for _, op := range ops {
				add(Case{Name: fmt.Sprintf("umask/%04o/%v/%v", dmode, u, op), User: u,
					Nodes: []Node{dir("d", dmode, owner{0, Other})}, Op: op})
			}
		}
	}
}

// otherTypeCases: symlinks (followed by chmod and open, not by lchown and
// the l*xattr calls) and fifos.
func otherTypeCases(add func(Case)) {
	for _, o := range []owner{{Alice.UID, NoGroup}, {0, NoGroup}} {
		for _, u := range users {
			nodes := []Node{
				file("t", 0o600, owner{Alice.UID, NoGroup}),
				{Path: "l", Kind: Symlink, Target: "t", UID: o.uid, GID: o.gid},
				{Path: "p", Kind: Fifo, Mode: 0o666, UID: o.uid, GID: o.gid},
			}
			ops := []Op{
				{Kind: Chmod, Path: "l", Mode: 0o644},
				{Kind: Open, Path: "l", Flags: syscall.O_RDONLY},
				{Kind: Chown, Path: "l", UID: int(Bob.UID), GID: -1},
				{Kind: Chown, Path: "l", UID: -1, GID: NoGroup},
				{Kind: SetXattr, Path: "l", Name: xattrName, Value: []byte("new")},
				{Kind: GetXattr, Path: "l", Name: xattrName},
				{Kind: Lstat, Path: "l"},
				{Kind: Unlink, Path: "l"},
				{Kind: Chmod, Path: "p", Mode: 0o600},
				{Kind: Chown, Path: "p", UID: -1, GID: Other},
				{Kind: SetXattr, Path: "p", Name: xattrName, Value: []byte("new")},
				{Kind: Truncate, Path: "p"},
				{Kind: UtimesNow, Path: "p"},
				{Kind: UtimesSet, Path: "p"},
				{Kind: Link, Path: "p", Path2: "p2"},
			}
			for _, op := range ops {
				add(Case{Name: fmt.Sprintf("types/%v/%v/%v", o, u, op), User: u, Nodes: nodes, Op: op})
			}
		}
	}
}
