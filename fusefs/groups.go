package fusefs

import (
	"bytes"
	"fmt"
	"os"
	"slices"
	"strconv"
	"sync"
)

// procGroups returns a membership test for the supplementary groups of
// thread tid (a FUSE request's caller), which it reads from
// /proc/tid/status the first time it is asked. A caller whose groups
// cannot be read (it has exited) is in none: a set-ID rule then clears
// the bit, the safe side.
func procGroups(tid uint32) func(gid uint32) bool {
	var once sync.Once
	var groups []uint32
	return func(gid uint32) bool {
		once.Do(func() {
			b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", tid))
			if err == nil {
				groups = parseGroups(b)
			}
		})
		return slices.Contains(groups, gid)
	}
}

// parseGroups returns the groups of the "Groups:" line of a
// /proc/PID/status file.
func parseGroups(status []byte) []uint32 {
	var groups []uint32
	for line := range bytes.Lines(status) {
		rest, ok := bytes.CutPrefix(line, []byte("Groups:"))
		if !ok {
			continue
		}
		for _, f := range bytes.Fields(rest) {
			if g, err := strconv.ParseUint(string(f), 10, 32); err == nil {
				groups = append(groups, uint32(g))
			}
		}
		break
	}
	return groups
}
