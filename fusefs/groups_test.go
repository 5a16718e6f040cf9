package fusefs

import (
	"os"
	"slices"
	"testing"
)

func TestParseGroups(t *testing.T) {
	status := "Name:\tcat\nUid:\t0\t0\t0\t0\nGroups:\t4 24 4000 \nNgid:\t0\n"
	if got := parseGroups([]byte(status)); !slices.Equal(got, []uint32{4, 24, 4000}) {
		t.Errorf("groups %v", got)
	}
	if got := parseGroups([]byte("Groups:\t\nNgid:\t0\n")); len(got) != 0 {
		t.Errorf("no groups: %v", got)
	}
}

// TestProcGroups: this process's groups are read from /proc; a thread that
// does not exist is in no group.
func TestProcGroups(t *testing.T) {
	groups, err := os.Getgroups()
	if err != nil {
		t.Fatal(err)
	}
	in := procGroups(uint32(os.Getpid()))
	for _, g := range groups {
		if !in(uint32(g)) {
			t.Errorf("not in its group %d", g)
		}
	}
	if procGroups(1 << 30)(0) {
		t.Error("a missing thread is in group 0")
	}
}
