package ninep

import (
	"os/user"
	"slices"
	"strconv"
	"sync"
	"syscall"

	"github.com/cowfs/cowfs"
)

// overflowGid is the group of a user the machine does not know (Linux's
// overflowgid, nogroup).
const overflowGid = 65534

// cred is who an attach speaks for: a user ID and its groups (the primary
// group first; overflowGid alone for a user the machine does not know). The server checks permission bits against it as the
// kernel would for a process with these IDs; uid 0 may read and write
// anything, as with CAP_DAC_OVERRIDE.
type cred struct {
	uid  uint32
	gids []uint32
}

// Access bits, as in a mode's rwx triplets.
const (
	mayRead  = 4
	mayWrite = 2
	mayExec  = 1
)

func (c *cred) root() bool { return c.uid == 0 }

func (c *cred) inGroup(gid uint32) bool { return slices.Contains(c.gids, gid) }

// may reports whether c has every access bit of want on a file with st:
// by its access ACL, if it has one beyond the mode (as Linux decides,
// package acl), else by the mode.
func (c *cred) may(st *cowfs.Stat, want uint32) bool {
	if c.root() {
		// Root may execute (search) only what has an x bit, or a directory.
		return want&mayExec == 0 || st.Mode&syscall.S_IFMT == syscall.S_IFDIR || st.Mode&0o111 != 0
	}
	if st.ACL != nil {
		return st.ACL.Permits(st.UID, st.GID, c.uid, c.inGroup, want)
	}
	var bits uint32
	switch {
	case st.UID == c.uid:
		bits = st.Mode >> 6
	case c.inGroup(st.GID):
		bits = st.Mode >> 3
	default:
		bits = st.Mode
	}
	return bits&7&want == want
}

// owns reports whether c may change st's mode, times and group: its owner
// or root.
func (c *cred) owns(st *cowfs.Stat) bool { return c.root() || st.UID == c.uid }

// mayUnlink reports whether c may remove or rename away the entry x of
// directory dir: it needs write and search permission on dir and, in a
// sticky directory, to own x or dir.
func (c *cred) mayUnlink(dir, x *cowfs.Stat) bool {
	if !c.may(dir, mayWrite|mayExec) {
		return false
	}
	if dir.Mode&syscall.S_ISVTX != 0 && !c.root() && x.UID != c.uid && dir.UID != c.uid {
		return false
	}
	return true
}

// newGid is the group of a new entry of directory dir that c makes, asking
// for group asked (9P2000.L sends the client's fsgid; 9P2000 sends none,
// pass NoUname): the directory's if it is set-group-ID, asked if c is root
// or in it, else c's primary group.
func (c *cred) newGid(dir *cowfs.Stat, asked uint32) uint32 {
	switch {
	case dir.Mode&syscall.S_ISGID != 0:
		return dir.GID
	case asked != NoUname && (c.root() || c.inGroup(asked)):
		return asked
	case len(c.gids) > 0:
		return c.gids[0]
	}
	return dir.GID
}

// chmodMode is what a chmod by c to mode sets on a file of group gid: mode
// without the set-group-ID bit unless c is root or in the group, as
// Linux's setattr_prepare decides, for directories too.
func (c *cred) chmodMode(gid, mode uint32) uint32 {
	if !c.root() && !c.inGroup(gid) {
		mode &^= syscall.S_ISGID
	}
	return mode
}

// createMode is the mode of a new non-directory of group gid that c makes
// asking for mode: a group-executable set-group-ID file for a group c is
// not in (made so by a set-group-ID directory) loses the bit unless c is
// root, as Linux's mode_strip_sgid decides; without group execute the bit
// stays.
func (c *cred) createMode(gid, mode uint32) uint32 {
	const sgidExec = syscall.S_ISGID | syscall.S_IXGRP
	if mode&sgidExec == sgidExec && !c.root() && !c.inGroup(gid) {
		mode &^= syscall.S_ISGID
	}
	return mode
}

// mkdirMode is the mode of a new directory of dir asking for mode: no
// set-ID bits of its own, and the set-group-ID bit if dir has it, whoever
// makes it, as Linux's vfs_mkdir and inode_init_owner decide.
func mkdirMode(dir *cowfs.Stat, mode uint32) uint32 {
	mode &= 0o1777
	if dir.Mode&syscall.S_ISGID != 0 {
		mode |= syscall.S_ISGID
	}
	return mode
}

// maxCached bounds each of users' caches.
const maxCached = 4096

// users resolves attach names to credentials and IDs to names, from the
// machine's user database, caching what it finds.
type users struct {
	mu    sync.Mutex
	creds map[uint32]*cred
	names map[uint32]string
	group map[uint32]string
}

// credOf returns the credentials of an attach: the numeric user nuname
// when it is not NoUname (9P2000.L), else the user named uname, which may
// be a number.
func (u *users) credOf(uname string, nuname uint32) (*cred, error) {
	uid := nuname
	if uid == NoUname {
		if n, err := strconv.ParseUint(uname, 10, 32); err == nil {
			uid = uint32(n)
		} else if usr, err := user.Lookup(uname); err == nil {
			n, _ := strconv.ParseUint(usr.Uid, 10, 32)
			uid = uint32(n)
		} else {
			return nil, perr(syscall.EACCES, "unknown user %q", uname)
		}
	}
	if uid == NoUname {
		return nil, perr(syscall.EACCES, "bad user id %d", uid)
	}
	u.mu.Lock()
	c, ok := u.creds[uid]
	u.mu.Unlock()
	if ok {
		return c, nil
	}
	c = &cred{uid: uid, gids: []uint32{overflowGid}}
	if usr, err := user.LookupId(strconv.FormatUint(uint64(uid), 10)); err == nil {
		c.gids = nil
		if g, err := strconv.ParseUint(usr.Gid, 10, 32); err == nil {
			c.gids = append(c.gids, uint32(g))
		}
		if ids, err := usr.GroupIds(); err == nil {
			for _, id := range ids {
				if g, err := strconv.ParseUint(id, 10, 32); err == nil && !c.inGroup(uint32(g)) {
					c.gids = append(c.gids, uint32(g))
				}
			}
		}
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.creds == nil || len(u.creds) >= maxCached {
		u.creds = map[uint32]*cred{} // any client may name any uid: bound what they cost
	}
	u.creds[uid] = c
	return c, nil
}

// userName is the name of uid for a 9P2000 stat: its login name, or the
// number when it has none.
func (u *users) userName(uid uint32) string {
	return u.name(&u.names, uid, func(id string) (string, error) {
		usr, err := user.LookupId(id)
		if err != nil {
			return "", err
		}
		return usr.Username, nil
	})
}

// groupName is userName for groups.
func (u *users) groupName(gid uint32) string {
	return u.name(&u.group, gid, func(id string) (string, error) {
		g, err := user.LookupGroupId(id)
		if err != nil {
			return "", err
		}
		return g.Name, nil
	})
}

func (u *users) name(cache *map[uint32]string, id uint32, lookup func(string) (string, error)) string {
	u.mu.Lock()
	n, ok := (*cache)[id]
	u.mu.Unlock()
	if ok {
		return n
	}
	s := strconv.FormatUint(uint64(id), 10)
	n, err := lookup(s)
	if err != nil {
		n = s
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	if *cache == nil || len(*cache) >= maxCached {
		*cache = map[uint32]string{}
	}
	(*cache)[id] = n
	return n
}

// uidOf and gidOf turn a 9P2000 wstat name back into an ID.
func uidOf(name string) (uint32, error) {
	if n, err := strconv.ParseUint(name, 10, 32); err == nil {
		return uint32(n), nil
	}
	usr, err := user.Lookup(name)
	if err != nil {
		return 0, perr(syscall.EINVAL, "unknown user %q", name)
	}
	n, _ := strconv.ParseUint(usr.Uid, 10, 32)
	return uint32(n), nil
}

func gidOf(name string) (uint32, error) {
	if n, err := strconv.ParseUint(name, 10, 32); err == nil {
		return uint32(n), nil
	}
	g, err := user.LookupGroup(name)
	if err != nil {
		return 0, perr(syscall.EINVAL, "unknown group %q", name)
	}
	n, _ := strconv.ParseUint(g.Gid, 10, 32)
	return uint32(n), nil
}
