package fusefs

import (
	"os"
	"testing"

	"github.com/cowfs/cowfs/internal/fusetest"
	"github.com/cowfs/cowfs/internal/permcases"
)

func TestMain(m *testing.M) {
	permcases.MaybeChild()
	os.Exit(m.Run())
}

// TestPermissionCasesMount runs the permission table through a mount (the
// kernel checks permissions with default_permissions; cowfs stores what
// the checks and the set-ID rules decide) and on a tmpfs, and compares.
func TestPermissionCasesMount(t *testing.T) {
	m := mountMem(t)
	ref := fusetest.Tmpfs(t, "mode=0755")
	cases := permcases.Cases()
	want := permcases.RunOS(t, ref, cases)
	got := permcases.RunOS(t, m.dir, cases)
	permcases.Compare(t, cases, want, got)
}
