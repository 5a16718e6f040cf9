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
// group first; overflowGid alone for a user the machine does not know).
// The engine checks permission against it (engine) as the kernel would for
// a process with these IDs.
type cred struct {
	uid  uint32
	gids []uint32
}

func (c *cred) root() bool { return c.uid == 0 }

func (c *cred) inGroup(gid uint32) bool { return slices.Contains(c.gids, gid) }

// primary is c's primary group.
func (c *cred) primary() uint32 {
	if len(c.gids) > 0 {
		return c.gids[0]
	}
	return overflowGid
}

// groupFor is the group c makes entries with when a 9P2000.L request asks
// for group asked (the client's fsgid): asked if c is root or in it, else
// c's primary group. (A set-group-ID directory's group, the engine gives.)
func (c *cred) groupFor(asked uint32) uint32 {
	if asked != NoUname && (c.root() || c.inGroup(asked)) {
		return asked
	}
	return c.primary()
}

// engine is c as the engine's caller, making entries of group gid; the
// engine checks permissions. The umask is 0: a 9P client applies its own.
func (c *cred) engine(gid uint32) cowfs.Cred {
	return cowfs.Cred{UID: c.uid, GID: gid, Groups: c.gids, Check: true}
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
