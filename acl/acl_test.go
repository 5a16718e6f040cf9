package acl

import (
	"bytes"
	"errors"
	"syscall"
	"testing"

	"pgregory.net/rapid"
)

// named is an extended ACL: owner rw-, user 1001 r--, group r-x, group
// 2001 rwx, mask r-x, other ---.
var named = ACL{
	{Tag: UserObj, Perm: 6},
	{Tag: User, Perm: 4, ID: 1001},
	{Tag: GroupObj, Perm: 5},
	{Tag: Group, Perm: 7, ID: 2001},
	{Tag: Mask, Perm: 5},
	{Tag: Other, Perm: 0},
}

func TestEncodeParse(t *testing.T) {
	b := named.Encode()
	if len(b) != headerSize+entrySize*len(named) {
		t.Fatalf("encoded %d bytes", len(b))
	}
	// The exact bytes Linux's posix_acl_to_xattr gives for the owner entry.
	if !bytes.Equal(b[:12], []byte{2, 0, 0, 0, 1, 0, 6, 0, 0xff, 0xff, 0xff, 0xff}) {
		t.Fatalf("header and owner entry % x", b[:12])
	}
	a, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	if !equal(a, named) {
		t.Fatalf("parsed %v, want %v", a, named)
	}
	if a, err := Parse([]byte{2, 0, 0, 0}); err != nil || a != nil {
		t.Fatalf("empty ACL: %v, %v; want nil, nil", a, err)
	}
}

func TestParseRejects(t *testing.T) {
	base := FromMode(0o640).Encode()
	cases := []struct {
		name  string
		b     []byte
		errno syscall.Errno
	}{
		{"short", []byte{2, 0}, syscall.EINVAL},
		{"version", append([]byte{1, 0, 0, 0}, base[4:]...), syscall.EOPNOTSUPP},
		{"ragged", append(append([]byte{}, base...), 1), syscall.EINVAL},
		{"perm", ACL{{Tag: UserObj, Perm: 8}, {Tag: GroupObj}, {Tag: Other}}.Encode(), syscall.EINVAL},
		{"no owner", ACL{{Tag: GroupObj}, {Tag: Other}}.Encode(), syscall.EINVAL},
		{"two owners", ACL{{Tag: UserObj}, {Tag: UserObj}, {Tag: GroupObj}, {Tag: Other}}.Encode(), syscall.EINVAL},
		{"no other", ACL{{Tag: UserObj}, {Tag: GroupObj}}.Encode(), syscall.EINVAL},
		{"named without mask", ACL{{Tag: UserObj}, {Tag: User, ID: 5}, {Tag: GroupObj}, {Tag: Other}}.Encode(), syscall.EINVAL},
		{"user among groups", ACL{{Tag: UserObj}, {Tag: GroupObj}, {Tag: User, ID: 5}, {Tag: Mask}, {Tag: Other}}.Encode(), syscall.EINVAL},
		{"mask first", ACL{{Tag: Mask}, {Tag: UserObj}, {Tag: GroupObj}, {Tag: Other}}.Encode(), syscall.EINVAL},
		{"after other", ACL{{Tag: UserObj}, {Tag: GroupObj}, {Tag: Other}, {Tag: Other}}.Encode(), syscall.EINVAL},
		{"unknown tag", ACL{{Tag: UserObj}, {Tag: 0x40}, {Tag: GroupObj}, {Tag: Other}}.Encode(), syscall.EINVAL},
		{"undefined id", ACL{{Tag: UserObj}, {Tag: User, ID: undefinedID}, {Tag: GroupObj}, {Tag: Mask}, {Tag: Other}}.Encode(), syscall.EINVAL},
	}
	for _, c := range cases {
		_, err := Parse(c.b)
		var ae *Error
		if !errors.As(err, &ae) || !errors.Is(err, c.errno) {
			t.Errorf("%s: Parse = %v, want an *Error with %v", c.name, err, c.errno)
		}
	}
	// A mask without named entries is valid, and not the mode.
	a, err := Parse(ACL{{Tag: UserObj, Perm: 7}, {Tag: GroupObj, Perm: 7}, {Tag: Mask, Perm: 4}, {Tag: Other}}.Encode())
	if err != nil || a.Equiv() || a.Mode() != 0o740 {
		t.Fatalf("mask only: %v, %v, equiv %v, mode %o", a, err, a.Equiv(), a.Mode())
	}
}

func TestModeChmod(t *testing.T) {
	if m := named.Mode(); m != 0o650 {
		t.Fatalf("Mode = %o, want 650 (the mask is the group class)", m)
	}
	c := named.Chmod(0o704)
	want := ACL{
		{Tag: UserObj, Perm: 7},
		{Tag: User, Perm: 4, ID: 1001},
		{Tag: GroupObj, Perm: 5},
		{Tag: Group, Perm: 7, ID: 2001},
		{Tag: Mask, Perm: 0},
		{Tag: Other, Perm: 4},
	}
	if !equal(c, want) {
		t.Fatalf("Chmod(704) = %v, want %v", c, want)
	}
	if named[4].Perm != 5 {
		t.Fatal("Chmod changed its receiver")
	}
	if !FromMode(0o751).Equiv() || named.Equiv() {
		t.Fatal("Equiv")
	}
}

func TestInherit(t *testing.T) {
	// A default ACL of only base entries: the mode is cut down by it.
	a, perm := Inherit(FromMode(0o750), 0o666)
	if a != nil || perm != 0o640 {
		t.Fatalf("Inherit(750, 666) = %v, %o; want nil, 640", a, perm)
	}
	a, perm = Inherit(named, 0o644)
	want := ACL{
		{Tag: UserObj, Perm: 6},
		{Tag: User, Perm: 4, ID: 1001},
		{Tag: GroupObj, Perm: 5},
		{Tag: Group, Perm: 7, ID: 2001},
		{Tag: Mask, Perm: 4},
		{Tag: Other, Perm: 0},
	}
	if !equal(a, want) || perm != 0o640 {
		t.Fatalf("Inherit(named, 644) = %v, %o; want %v, 640", a, perm, want)
	}
}

func TestPermits(t *testing.T) {
	in := func(gids ...uint32) func(uint32) bool {
		return func(g uint32) bool {
			for _, x := range gids {
				if x == g {
					return true
				}
			}
			return false
		}
	}
	const owner, group = 1000, 100
	cases := []struct {
		uid  uint32
		gids []uint32
		want uint32
		ok   bool
	}{
		{owner, nil, Read | Write, true},
		{owner, nil, Execute, false},            // the owner's entry decides, not the groups'
		{owner, []uint32{2001}, Execute, false}, // even when a group would grant it
		{1001, nil, Read, true},
		{1001, nil, Write, false},
		{1001, []uint32{2001}, Write, false}, // a named user entry decides for that user
		{5, []uint32{2001}, Write, false},    // group 2001 has rwx but the mask r-x
		{5, []uint32{2001}, Read | Execute, true},
		{5, []uint32{group}, Read, true},
		{5, []uint32{group}, Write, false}, // matched a group: other's entry is not used
		{5, nil, Read, false},
	}
	for _, c := range cases {
		if got := named.Permits(owner, group, c.uid, in(c.gids...), c.want); got != c.ok {
			t.Errorf("uid %d gids %v want %o: %v, expected %v", c.uid, c.gids, c.want, got, c.ok)
		}
	}
	// A mask of nothing: Linux ignores the ACL; the file's group gets the
	// group bits (none), everyone else other's entry, named or not.
	noMask := named.Chmod(0o604)
	if !noMask.Permits(owner, group, 1001, in(), Read) || noMask.Permits(owner, group, 5, in(group), Read) ||
		!noMask.Permits(owner, group, 5, in(2001), Read) || noMask.Permits(owner, group, 1001, in(), Write) {
		t.Fatal("a mask of nothing must leave the decision to the mode")
	}
	// Without a mask, the matching group entry decides alone.
	plain := FromMode(0o604)
	if plain.Permits(1, 100, 5, in(100), Read) || !plain.Permits(1, 100, 5, in(7), Read) {
		t.Fatal("a group with no access must not fall back to other's entry")
	}
}

// genACL draws a valid ACL: sometimes only base entries, sometimes a mask
// alone, sometimes named users and groups.
func genACL(t *rapid.T, label string) ACL {
	perm := rapid.Uint16Range(0, 7)
	a := ACL{{Tag: UserObj, Perm: perm.Draw(t, label+"owner")}}
	users := rapid.SliceOfDistinct(rapid.Uint32Range(1000, 1003), rapid.ID[uint32]).Draw(t, label+"users")
	groups := rapid.SliceOfDistinct(rapid.Uint32Range(100, 103), rapid.ID[uint32]).Draw(t, label+"groups")
	sortIDs(users)
	sortIDs(groups)
	for _, u := range users {
		a = append(a, Entry{Tag: User, Perm: perm.Draw(t, label+"uperm"), ID: u})
	}
	a = append(a, Entry{Tag: GroupObj, Perm: perm.Draw(t, label+"group")})
	for _, g := range groups {
		a = append(a, Entry{Tag: Group, Perm: perm.Draw(t, label+"gperm"), ID: g})
	}
	if len(users)+len(groups) > 0 || rapid.Bool().Draw(t, label+"mask") {
		a = append(a, Entry{Tag: Mask, Perm: perm.Draw(t, label+"maskperm")})
	}
	return append(a, Entry{Tag: Other, Perm: perm.Draw(t, label+"other")})
}

func sortIDs(s []uint32) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

// TestProperties checks what every valid ACL must satisfy.
func TestProperties(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		a := genACL(t, "")
		if err := a.Valid(); err != nil {
			t.Fatalf("generated %v: %v", a, err)
		}
		b, err := Parse(a.Encode())
		if err != nil || !equal(a, b) {
			t.Fatalf("round trip %v: %v, %v", a, b, err)
		}
		mode := rapid.Uint32Range(0, 0o777).Draw(t, "mode")
		c := a.Chmod(mode)
		if c.Mode() != mode || c.Valid() != nil || len(c) != len(a) {
			t.Fatalf("Chmod(%o) of %v = %v, mode %o", mode, a, c, c.Mode())
		}
		in, perm := Inherit(a, mode)
		if perm&^mode != 0 {
			t.Fatalf("Inherit granted bits %o beyond %o", perm, mode)
		}
		if in != nil && (in.Mode() != perm || in.Valid() != nil) {
			t.Fatalf("Inherit(%v, %o) = %v, %o", a, mode, in, perm)
		}
		if in == nil && (!a.Equiv() || perm != a.Mode()&mode) {
			t.Fatalf("Inherit(%v, %o) dropped the ACL, perm %o", a, mode, perm)
		}
		// An ACL of the three base entries permits what the mode does.
		if a.Equiv() {
			m := a.Mode()
			uid := rapid.Uint32Range(999, 1001).Draw(t, "uid")
			ing := rapid.Bool().Draw(t, "ingroup")
			want := rapid.Uint32Range(1, 7).Draw(t, "want")
			bits := m & 7
			switch {
			case uid == 1000:
				bits = m >> 6 & 7
			case ing:
				bits = m >> 3 & 7
			}
			got := a.Permits(1000, 100, uid, func(uint32) bool { return ing }, want)
			if got != (bits&want == want) {
				t.Fatalf("mode %o uid %d ingroup %v want %o: %v", m, uid, ing, want, got)
			}
		}
	})
}

func equal(a, b ACL) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
