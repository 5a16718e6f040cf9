package cowfs

import (
	"context"
	"os"
	"testing"
)

// TestKillSetID: an unchecked caller that asks (Cred.KillSetID, the FUSE
// mount's FUSE_HANDLE_KILLPRIV_V2) has set-ID bits cleared on write,
// truncate, open with O_TRUNC and chown as Linux clears them, its groups
// answered by InGroup; one that does not ask keeps them.
func TestKillSetID(t *testing.T) {
	_, v := apiFS(t)
	in4000 := func(gid uint32) bool { return gid == 4000 }
	member := Cred{UID: 4242, GID: 100, KillSetID: true, InGroup: in4000}
	outsider := Cred{UID: 4242, GID: 100, KillSetID: true, InGroup: func(uint32) bool { return false }}
	cases := []struct {
		name string
		c    Cred
		mode uint32
		do   func(ctx context.Context, f *File) error
		want uint32
	}{
		{"write, member", member, 0o6745, write1, 0o2745},
		{"write, outsider", outsider, 0o6745, write1, 0o0745},
		{"write, group exec", member, 0o6775, write1, 0o0775},
		{"write, not asked", Cred{UID: 4242}, 0o6745, write1, 0o6745},
		{"truncate, outsider", outsider, 0o2745, truncate0, 0o0745},
		{"chown, member", member, 0o6745, chownGroup, 0o2745},
		{"chown, outsider", outsider, 0o6745, chownGroup, 0o0745},
	}
	for _, tc := range cases {
		if err := v.WriteFile("f", []byte("data"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := v.Chown("f", 0, 4000); err != nil {
			t.Fatal(err)
		}
		if err := v.Chmod("f", tc.mode); err != nil {
			t.Fatal(err)
		}
		f, err := v.OpenFile("f", os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		if err := tc.do(WithCred(context.Background(), tc.c), f); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		f.Close()
		fi, err := v.Stat("f")
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Stat().Mode & 0o7777; got != tc.want {
			t.Errorf("%s: mode %#o, want %#o", tc.name, got, tc.want)
		}
	}
	// An open with O_TRUNC through the handle API.
	if err := v.Chmod("f", 0o6745); err != nil {
		t.Fatal(err)
	}
	root := v.RootInode()
	defer root.Release()
	x, _, err := root.Lookup(context.Background(), "f")
	if err != nil {
		t.Fatal(err)
	}
	defer x.Release()
	f, err := x.Open(WithCred(context.Background(), outsider), os.O_RDWR|os.O_TRUNC)
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	if fi, err := v.Stat("f"); err != nil || fi.Stat().Mode&0o7777 != 0o0745 {
		t.Errorf("open O_TRUNC by an outsider: mode %#o, %v", fi.Stat().Mode&0o7777, err)
	}
}

func write1(ctx context.Context, f *File) error {
	_, err := f.WriteAtContext(ctx, []byte("x"), 0)
	return err
}

func truncate0(ctx context.Context, f *File) error {
	var zero int64
	return f.Setattr(ctx, SetAttr{Size: &zero})
}

func chownGroup(ctx context.Context, f *File) error {
	gid := uint32(4000)
	return f.Setattr(ctx, SetAttr{GID: &gid})
}
