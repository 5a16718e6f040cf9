// Package acl implements POSIX access control lists as Linux keeps them: in
// the extended attributes system.posix_acl_access (a file's access ACL) and
// system.posix_acl_default (a directory's default ACL, which new entries
// inherit), in Linux's little-endian xattr form.
//
// The rules are the kernel's (fs/posix_acl.c), so a cowfs volume behaves like
// ext4, XFS or btrfs whichever frontend serves it:
//   - an access ACL of only the three base entries (owner, group, other) is
//     the mode: setting it changes the permission bits and stores nothing
//     (Equiv); any other access ACL is stored, and its mask entry, or the
//     group entry when there is no mask, is what the group bits show (Mode);
//   - chmod rewrites the owner, mask (or group) and other entries (Chmod);
//   - an entry created in a directory with a default ACL gets that ACL as its
//     access ACL, cut down by the mode asked for, and no umask applies
//     (Inherit); a directory also inherits the default ACL itself;
//   - access is decided by the first entry that matches the caller, named
//     entries and the group class limited by the mask (Permits).
package acl

import (
	"encoding/binary"
	"fmt"
	"syscall"
)

// Names of the extended attributes that hold ACLs.
const (
	AccessXattr  = "system.posix_acl_access"
	DefaultXattr = "system.posix_acl_default"
)

// Tag says whom an entry is for.
type Tag uint16

// Entry tags, with their values in the xattr form.
const (
	UserObj  Tag = 0x01 // the file's owner
	User     Tag = 0x02 // the user ID
	GroupObj Tag = 0x04 // the file's group
	Group    Tag = 0x08 // the group ID
	Mask     Tag = 0x10 // the most any named entry or the group class grants
	Other    Tag = 0x20 // everyone else
)

// Permission bits of an entry (and of the want argument of Permits).
const (
	Read    = 4
	Write   = 2
	Execute = 1
)

// Entry is one entry of an ACL.
type Entry struct {
	Tag  Tag
	Perm uint16 // Read|Write|Execute bits
	ID   uint32 // the uid of a User entry, the gid of a Group entry; else 0
}

// ACL is a valid ACL: one UserObj, the User entries, one GroupObj, the
// Group entries, a Mask (required when there are named entries) and one
// Other, in that order, as Valid checks. Like Linux, Valid does not ask
// named entries to be sorted or distinct (setfacl sorts them); the first
// entry that matches decides.
type ACL []Entry

// xattr form: a 4-byte version, then 8 bytes per entry (tag, perm, id).
const (
	xattrVersion = 2
	headerSize   = 4
	entrySize    = 8
	undefinedID  = 0xffffffff // the id of entries that name no one
)

// MaxEntries bounds an ACL, as the kernel bounds one to what an xattr
// value of 64 KiB holds.
const MaxEntries = (64<<10 - headerSize) / entrySize

// Parse decodes an ACL from its xattr form and checks it as the kernel does
// before it accepts one (Decode, then Valid). A value with no entries
// decodes to nil: it removes the ACL. Its errors are *Error.
func Parse(b []byte) (ACL, error) {
	a, err := Decode(b)
	if err != nil || a == nil {
		return nil, err
	}
	if err := a.Valid(); err != nil {
		return nil, err
	}
	return a, nil
}

// Decode decodes the xattr form without Valid's checks, as far as the
// kernel's posix_acl_from_xattr goes: the version, the size, known tags,
// and an ID in every named entry. A kernel checks the rest (Valid) only
// after it has found that the file may take the ACL.
func Decode(b []byte) (ACL, error) {
	if len(b) < headerSize {
		return nil, invalid("%d bytes", len(b))
	}
	if v := binary.LittleEndian.Uint32(b); v != xattrVersion {
		return nil, &Error{Errno: syscall.EOPNOTSUPP, Msg: fmt.Sprintf("version %d", v)}
	}
	body := b[headerSize:]
	if len(body)%entrySize != 0 {
		return nil, invalid("%d bytes of entries", len(body))
	}
	n := len(body) / entrySize
	if n == 0 {
		return nil, nil
	}
	if n > MaxEntries {
		return nil, invalid("%d entries, more than %d", n, MaxEntries)
	}
	a := make(ACL, n)
	for i := range a {
		e := body[i*entrySize:]
		a[i] = Entry{
			Tag:  Tag(binary.LittleEndian.Uint16(e)),
			Perm: binary.LittleEndian.Uint16(e[2:]),
			ID:   binary.LittleEndian.Uint32(e[4:]),
		}
		switch a[i].Tag {
		case User, Group:
			if a[i].ID == undefinedID {
				return nil, invalid("entry %d names no one", i)
			}
		case UserObj, GroupObj, Mask, Other:
			a[i].ID = 0
		default:
			return nil, invalid("entry %d has tag %#x", i, a[i].Tag)
		}
	}
	return a, nil
}

// Error is a malformed ACL; Errno is what a system call answers for it.
type Error struct {
	Errno syscall.Errno // EINVAL, or EOPNOTSUPP for another format version
	Msg   string
}

func (e *Error) Error() string { return "acl: " + e.Msg }

// Unwrap returns the errno, so errors.Is(err, syscall.EINVAL) works.
func (e *Error) Unwrap() error { return e.Errno }

func invalid(format string, args ...any) *Error {
	return &Error{Errno: syscall.EINVAL, Msg: fmt.Sprintf(format, args...)}
}

const errOrder = "entries missing, repeated or out of order"

// Valid checks a as the kernel's posix_acl_valid does: permission bits
// within rwx, and the order and multiplicity of entries ACL describes.
func (a ACL) Valid() error {
	const (
		wantUserObj = iota
		inUsers
		inGroups
		wantOther
		done
	)
	state, needMask := wantUserObj, false
	for _, e := range a {
		if e.Perm&^(Read|Write|Execute) != 0 {
			return invalid("permission bits %#o", e.Perm)
		}
		ok := false
		switch e.Tag {
		case UserObj:
			ok = state == wantUserObj
			state = inUsers
		case User, Group:
			inState := inUsers
			if e.Tag == Group {
				inState = inGroups
			}
			ok, needMask = state == inState, true
		case GroupObj:
			ok = state == inUsers
			state = inGroups
		case Mask:
			ok = state == inGroups
			state = wantOther
		case Other:
			ok = state == wantOther || (state == inGroups && !needMask)
			state = done
		}
		if !ok {
			return invalid(errOrder)
		}
	}
	if state != done {
		return invalid(errOrder)
	}
	return nil
}

// Encode returns a's xattr form.
func (a ACL) Encode() []byte {
	b := make([]byte, headerSize, headerSize+entrySize*len(a))
	binary.LittleEndian.PutUint32(b, xattrVersion)
	for _, e := range a {
		id := e.ID
		if e.Tag != User && e.Tag != Group {
			id = undefinedID
		}
		b = binary.LittleEndian.AppendUint16(b, uint16(e.Tag))
		b = binary.LittleEndian.AppendUint16(b, e.Perm)
		b = binary.LittleEndian.AppendUint32(b, id)
	}
	return b
}

// FromMode returns the three-entry ACL that the permission bits of mode
// stand for.
func FromMode(mode uint32) ACL {
	return ACL{
		{Tag: UserObj, Perm: uint16(mode >> 6 & 7)},
		{Tag: GroupObj, Perm: uint16(mode >> 3 & 7)},
		{Tag: Other, Perm: uint16(mode & 7)},
	}
}

// Equiv reports whether a holds no more than a mode does (only the three
// base entries); such an access ACL is stored as the mode alone.
func (a ACL) Equiv() bool {
	for _, e := range a {
		if e.Tag != UserObj && e.Tag != GroupObj && e.Tag != Other {
			return false
		}
	}
	return true
}

// Mode returns the permission bits (0777) a shows: the owner's entry, the
// group class (groupClass) and other's.
func (a ACL) Mode() uint32 {
	var mode uint32
	for _, e := range a {
		switch e.Tag {
		case UserObj:
			mode |= uint32(e.Perm&7) << 6
		case Other:
			mode |= uint32(e.Perm & 7)
		}
	}
	if g := a.groupClass(); g >= 0 {
		mode |= uint32(a[g].Perm&7) << 3
	}
	return mode
}

// groupClass returns the index of the entry that holds the group class's
// permissions, which the mode's group bits show: the mask, or the group
// entry when there is no mask; -1 if there is neither.
func (a ACL) groupClass() int {
	group := -1
	for i, e := range a {
		switch e.Tag {
		case Mask:
			return i
		case GroupObj:
			if group < 0 {
				group = i
			}
		}
	}
	return group
}

// Chmod returns a copy of a whose owner, group class (the mask, or the
// group entry when there is no mask) and other entries hold the
// permission bits of mode, as chmod(2) changes an ACL.
func (a ACL) Chmod(mode uint32) ACL {
	out := append(ACL(nil), a...)
	for i, e := range out {
		switch e.Tag {
		case UserObj:
			out[i].Perm = uint16(mode >> 6 & 7)
		case Other:
			out[i].Perm = uint16(mode & 7)
		}
	}
	if g := out.groupClass(); g >= 0 {
		out[g].Perm = uint16(mode >> 3 & 7)
	}
	return out
}

// Inherit returns the access ACL and the permission bits of an entry
// created with permission bits mode (0777; no umask applied) in a directory
// whose default ACL is def, as the kernel's posix_acl_create does: every
// class of def is cut down to what mode grants it and mode to what def
// grants. access is nil when it would hold no more than the mode.
func Inherit(def ACL, mode uint32) (access ACL, perm uint32) {
	a := append(ACL(nil), def...)
	mode &= 0o777
	for i, e := range a {
		switch e.Tag {
		case UserObj:
			a[i].Perm &= uint16(mode >> 6 & 7)
			mode &= uint32(a[i].Perm)<<6 | ^uint32(0o700)
		case Other:
			a[i].Perm &= uint16(mode & 7)
			mode &= uint32(a[i].Perm) | ^uint32(0o007)
		}
	}
	if g := a.groupClass(); g >= 0 {
		a[g].Perm &= uint16(mode >> 3 & 7)
		mode &= uint32(a[g].Perm)<<3 | ^uint32(0o070)
	}
	if a.Equiv() {
		return nil, mode
	}
	return a, mode
}

// Permits reports whether a grants every bit of want (Read, Write, Execute)
// to the user uid, a member of the groups inGroup accepts, on a file owned
// by owner and group, exactly as Linux decides (acl_permission_check and
// posix_acl_permission): the owner gets the owner's entry; else, when the
// group class (the mask) grants anything, the first matching entry decides:
// a named user's, limited by the mask; else the first of the file's group
// entry and the named group entries that matches and grants want, limited
// by the mask (when some match but none grants want, access is denied);
// else other's. When the mask grants nothing, Linux does not consult the
// ACL: members of the file's group get nothing and everyone else other's
// entry. Root's privileges are the caller's to apply.
func (a ACL) Permits(owner, group, uid uint32, inGroup func(gid uint32) bool, want uint32) bool {
	want &= 7
	mode := a.Mode()
	if uid == owner {
		return mode>>6&want == want
	}
	if mode&0o070 == 0 {
		if want&(mode^mode>>3) != 0 && inGroup(group) {
			mode >>= 3
		}
		return mode&want == want
	}
	var mask uint16 = 7
	if g := a.groupClass(); g >= 0 && a[g].Tag == Mask {
		mask = a[g].Perm
	}
	grants := func(p uint16) bool { return uint32(p)&want == want }
	groupMatched := false
	for _, e := range a {
		switch e.Tag {
		case User:
			if uid == e.ID {
				return grants(e.Perm & mask)
			}
		case GroupObj, Group:
			gid := group
			if e.Tag == Group {
				gid = e.ID
			}
			if inGroup(gid) {
				if grants(e.Perm) {
					return grants(e.Perm & mask)
				}
				groupMatched = true
			}
		case Other:
			return !groupMatched && grants(e.Perm)
		}
	}
	return false
}
