package permcases

import (
	"os"
	"syscall"
	"testing"

	"github.com/cowfs/cowfs/internal/fusetest"
)

func TestMain(m *testing.M) {
	MaybeChild()
	os.Exit(m.Run())
}

// TestPermissionCasesLinux runs the table on a tmpfs and checks a few outcomes
// that are Linux's rules beyond doubt, so the table's mechanics (setup,
// users, umask, lstat) are known to be right.
func TestPermissionCasesLinux(t *testing.T) {
	fusetest.RequireRoot(t)
	cases := Cases()
	out := RunOS(t, fusetest.Tmpfs(t, "mode=0755"), cases)
	byName := map[string]Outcome{}
	for i, c := range cases {
		byName[c.Name] = out[i]
	}
	if os.Getenv("COWFS_PERMCASES_DUMP") != "" {
		for i, c := range cases {
			t.Logf("%s: %v", c.Name, out[i])
		}
	}
	t.Logf("%d cases", len(cases))
	get := func(name string) Outcome {
		t.Helper()
		o, ok := byName[name]
		if !ok {
			t.Fatalf("no case %s", name)
		}
		return o
	}
	check := func(name string, errno syscall.Errno, p string, mode uint32, uid, gid uint32) {
		t.Helper()
		o := get(name)
		if o.Errno != errno {
			t.Errorf("%s: %v, want errno %v", name, o, errno)
		}
		if p == "" {
			return
		}
		st := o.After[p]
		if !st.Exists || st.Mode != mode || st.UID != uid || st.GID != gid {
			t.Errorf("%s: %s is %v, want mode %o owner %d:%d", name, p, st, mode, uid, gid)
		}
	}
	const reg, dir = syscall.S_IFREG, syscall.S_IFDIR
	// Another user's file in a sticky world-writable directory stays.
	check("dir/1777-0:4000/victim-4343/u4242/unlink d/f", syscall.EPERM, "d/f", reg|0o644, 4343, NoGroup)
	check("dir/1777-0:4000/victim-4242/u4242/unlink d/f", 0, "", 0, 0, 0)
	check("dir/1777-4242:65534/victim-4343/u4242/unlink d/f", 0, "", 0, 0, 0)
	// chmod g+s by the owner outside the file's group drops the bit.
	check("file/0644-4242:4000/u4242/chmod f 2644", 0, "f", reg|0o644, 4242, Other)
	check("file/0644-4242:65534/u4242/chmod f 2644", 0, "f", reg|0o2644, 4242, NoGroup)
	// Only root gives a file away; its owner may change its group to
	// one of its own groups only.
	check("file/0644-4242:65534/u4242/chown f 4343:-1", syscall.EPERM, "f", reg|0o644, 4242, NoGroup)
	check("file/0644-4242:4000/u4242/chown f -1:65534", 0, "f", reg|0o644, 4242, NoGroup)
	check("file/0644-4242:65534/u4242/chown f -1:4000", syscall.EPERM, "", 0, 0, 0)
	// chown clears set-ID bits, even root's.
	check("file/6777-4242:65534/root/chown f 4343:-1", 0, "f", reg|0o777, 4343, NoGroup)
	// A write by another user clears set-user-ID, and set-group-ID
	// where the group may execute; root's does not.
	check("file/6777-4242:65534/u4343/write f", 0, "f", reg|0o777, 4242, NoGroup)
	check("file/2745-4242:65534/u4242/write f", 0, "f", reg|0o2745, 4242, NoGroup)
	check("file/6777-4242:65534/root/write f", 0, "f", reg|0o6777, 4242, NoGroup)
	// Times: anyone who may write sets them to now, only the owner to
	// a time of its choosing.
	check("file/0660-0:65534/u4242/utimes-now f", 0, "", 0, 0, 0)
	check("file/0660-0:65534/u4242/utimes-set f", syscall.EPERM, "", 0, 0, 0)
	check("file/0644-0:65534/u4242/utimes-now f", syscall.EACCES, "", 0, 0, 0)
	// No lookup without search permission, no listing without read.
	check("dir/0744-0:4000/victim-4343/u4242/stat d/f", syscall.EACCES, "", 0, 0, 0)
	check("dir/0733-0:4000/victim-4343/u4242/readdir d", syscall.EACCES, "", 0, 0, 0)
	// Moving another's directory to a new parent needs write on it
	// (its ".." changes); renaming it in place does not.
	check("dir/0777-0:4000/victim-4343/u4242/rename d/sub e/sub", syscall.EACCES, "d/sub", dir|0o755, 4343, NoGroup)
	check("dir/0777-0:4000/victim-4343/u4242/rename d/sub d/sub2", 0, "d/sub2", dir|0o755, 4343, NoGroup)
	// A set-group-ID directory passes on its group, and the bit to
	// directories; a group-executable set-group-ID file of a group its
	// maker is not in loses the bit.
	check("dir/2777-0:4000/victim-4343/u4242/mkdir d/new 0777", 0, "d/new", dir|0o2755, 4242, Other)
	check("dir/2777-0:4000/victim-4343/u4242/open d/new O_WRONLY|O_CREAT|O_EXCL 2775", 0, "d/new", reg|0o755, 4242, Other)
	check("dir/2777-0:4000/victim-4343/u4242/open d/new O_WRONLY|O_CREAT|O_EXCL 2745", 0, "d/new", reg|0o2745, 4242, Other)
	// user. attributes: only on files and directories, with write.
	check("types/4242:65534/u4242/setxattr l user.test", syscall.EPERM, "", 0, 0, 0)
	check("file/0644-0:65534/u4242/setxattr f user.test", syscall.EACCES, "", 0, 0, 0)
	// The umask applies, unless a default ACL decides.
	check("umask/0777/u4242-m077/open d/new O_WRONLY|O_CREAT|O_EXCL 0666", 0, "d/new", reg|0o600, 4242, NoGroup)
	check("defacl/0777/u4242/mkdir d/new 0777", 0, "d/new", dir|0o775, 4242, NoGroup) // the mask rwx as group bits, no umask
	// A named user entry grants what the mask lets through.
	check("acl/alice-masked-0:4000/u4242/open f O_RDONLY", 0, "", 0, 0, 0)
	check("acl/alice-masked-0:4000/u4242/open f O_WRONLY", syscall.EACCES, "", 0, 0, 0)
	// Hard links to others' files need read and write on them
	// (fs.protected_hardlinks).
	if b, _ := os.ReadFile("/proc/sys/fs/protected_hardlinks"); string(b) == "1\n" {
		check("dir/0777-0:4000/victim-4343/u4242/link d/f d/l", syscall.EPERM, "", 0, 0, 0)
	}
}
