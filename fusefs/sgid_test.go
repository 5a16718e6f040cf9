package fusefs

import (
	"os"
	"path/filepath"
	"testing"
)

// TestSetGIDMatchesKernel does, in the mount and on a tmpfs, what Linux's
// rules for the set-group-ID bit decide, and compares the two trees. As
// nobody, who is in no group but its own: a chmod or an access-ACL change
// of a directory it owns whose group it is not in clears the bit (a
// default ACL leaves it); in set-group-ID directories of another group
// (one with a default ACL), a directory it makes takes that group and the
// bit, whatever mode it asked for and whatever its umask, and a file it
// makes takes the group and loses the bit if it is group-executable. The
// same creations by root without CAP_FSETID in a group of its own (as in
// xfstests' vfstest setgid_create) come out the same; root's own keep the
// bit.
func TestSetGIDMatchesKernel(t *testing.T) {
	m := mountMem(t)
	openUp(t, m.dir)
	model := aclTmpfs(t)
	const root = `
umask 022
mkdir own1 own2 own3 own4 own5 pub pubacl rootpub
chown 65534:0 own1 own2 own3 own4 own5
chmod 2775 own1 own2 own3 own4
chmod 0775 own5
chmod 2777 pub pubacl rootpub
setfacl -d -m u::rwx,g::rwx,o::rwx,u:1000:rx pubacl
perl -MFcntl -e 'sysopen(F, "pub/rootf", O_CREAT|O_EXCL|O_WRONLY, 02755) or die "$!"; mkdir("pub/rootd", 02777) or die "$!"'
`
	// mk makes entries in directory $1.
	const mk = `
mk() {
	umask 022
	mkdir "$1/d" "$1/d/sub"
	mkdir -m 0700 "$1/private"
	mkdir -m 1777 "$1/sticky"
	touch "$1/f"
	mkfifo "$1/fifo"
	perl -MFcntl -MPOSIX -e '
	$d = shift;
	sysopen(F, "$d/x", O_CREAT|O_EXCL|O_WRONLY, 02755) or die "x: $!";
	sysopen(F, "$d/nox", O_CREAT|O_EXCL|O_WRONLY, 02745) or die "nox: $!";
	mkfifo("$d/p", 02775) or die "p: $!";
	mkdir("$d/y", 02777) or die "y: $!";
	mkdir("$d/zero", 0) or die "zero: $!";
	umask(077);
	mkdir("$d/masked", 0777) or die "masked: $!";
	umask(010);
	sysopen(F, "$d/um", O_CREAT|O_EXCL|O_WRONLY, 02755) or die "um: $!";
	' "$1"
}
`
	const user = mk + `
chmod 2755 own1
setfacl -m u:1000:rx own2
setfacl -d -m u:1000:rx own3
chmod g-w own4
chmod g+s own5
mk pub
mk pubacl
`
	for _, dir := range []string{model, m.dir} {
		sh(t, dir, root)
		if out, ok := shAs(t, dir, user); !ok {
			t.Fatalf("as nobody in %s: %s", dir, out)
		}
		sh(t, dir, "setpriv --regid=10000 --clear-groups --bounding-set=-fsetid --inh-caps=-fsetid sh -e <<'EOF'\n"+mk+"mk rootpub\nEOF\n")
	}
	aclCompare(t, "set-group-ID", model, m.dir, ignore)
	// What the kernel did on the tmpfs, stated, so that a change of the
	// model shows here too.
	want := map[string]os.FileMode{
		"own1": 0o755, "own2": 0o775, "own3": os.ModeSetgid | 0o775, "own4": 0o755, "own5": 0o775,
		"pub/rootf": os.ModeSetgid | 0o755, "pub/rootd": os.ModeSetgid | 0o755,
	}
	for _, d := range []string{"pub", "rootpub"} {
		for p, mode := range map[string]os.FileMode{
			"d": os.ModeSetgid | 0o755, "d/sub": os.ModeSetgid | 0o755, "private": os.ModeSetgid | 0o700,
			"sticky": os.ModeSticky | 0o777, "f": 0o644, "x": 0o755, "nox": os.ModeSetgid | 0o745,
			"y": os.ModeSetgid | 0o755, "zero": os.ModeSetgid, "masked": os.ModeSetgid | 0o700, "um": 0o745,
		} {
			want[d+"/"+p] = mode
		}
	}
	for p, mode := range want {
		fi, err := os.Stat(filepath.Join(model, p))
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode() &^ os.ModeDir; got != mode {
			t.Errorf("tmpfs: %s: mode %v, want %v", p, got, mode)
		}
	}
}
