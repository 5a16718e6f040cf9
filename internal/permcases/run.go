package permcases

import (
	"fmt"
	"os"
	"path"
	"sort"
	"sync"
	"syscall"
	"testing"
)

// Runner is a target the cases run on that is not the operating system
// (the engine's Go API, a 9P server). Paths are slash-separated and
// relative to the target's root; Run gives each case a directory of its
// own (two levels down) and makes it and its parent (mode 0755, root's)
// with Setup before the case's nodes.
type Runner interface {
	// Setup makes n as root: the entry, then its extended attributes,
	// owner, mode (set-ID bits included) and ACLs, in that order.
	Setup(n Node) error
	// Do does op as u and returns its errno (0 when it succeeded).
	Do(u User, op Op) syscall.Errno
	// Lstat describes path as root; Stat{} (Exists false) if there is
	// no such entry.
	Lstat(path string) (Stat, error)
}

// Run runs cases on r, each in a directory of its own, and returns their
// outcomes.
func Run(t testing.TB, r Runner, cases []Case) []Outcome {
	t.Helper()
	setupAll(t, r, cases, 1)
	errnos := make([]syscall.Errno, len(cases))
	for i, c := range cases {
		errnos[i] = r.Do(c.User, prefixed(caseDir(i), c.Op))
	}
	return outcomes(t, r, cases, errnos, 1)
}

// perGroup is how many cases' directories share a parent (a directory of
// thousands of entries would make every setup slow).
const perGroup = 64

// groupDir is the parent of the i'th case's directory.
func groupDir(i int) string { return fmt.Sprintf("g%d", i/perGroup) }

// caseDir is the directory of the i'th case.
func caseDir(i int) string { return fmt.Sprintf("%s/c%d", groupDir(i), i) }

// prefixed is op with its paths below dir.
func prefixed(dir string, op Op) Op {
	op.Path = path.Join(dir, op.Path)
	if op.Path2 != "" {
		op.Path2 = path.Join(dir, op.Path2)
	}
	return op
}

// forEach calls f for every case, on workers goroutines, and returns the
// first error (naming its case).
func forEach(cases []Case, workers int, f func(i int, c Case) error) error {
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
		next  = make(chan int)
	)
	for range workers {
		wg.Go(func() {
			for i := range next {
				if err := f(i, cases[i]); err != nil {
					mu.Lock()
					if first == nil {
						first = fmt.Errorf("case %s: %w", cases[i].Name, err)
					}
					mu.Unlock()
				}
			}
		})
	}
	for i := range cases {
		next <- i
	}
	close(next)
	wg.Wait()
	return first
}

// setupAll makes every case's directory and nodes, on workers goroutines.
func setupAll(t testing.TB, r interface{ Setup(Node) error }, cases []Case, workers int) {
	t.Helper()
	for i := 0; i < len(cases); i += perGroup {
		if err := r.Setup(Node{Path: groupDir(i), Kind: Dir, Mode: 0o755}); err != nil {
			t.Fatalf("make %s: %v", groupDir(i), err)
		}
	}
	err := forEach(cases, workers, func(i int, c Case) error {
		d := caseDir(i)
		if err := r.Setup(Node{Path: d, Kind: Dir, Mode: 0o755}); err != nil {
			return fmt.Errorf("make %s: %w", d, err)
		}
		for _, n := range c.Nodes {
			n.Path = path.Join(d, n.Path)
			if err := r.Setup(n); err != nil {
				return fmt.Errorf("make %s: %w", n.Path, err)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// outcomes lstats what every case names, on workers goroutines.
func outcomes(t testing.TB, r interface{ Lstat(string) (Stat, error) }, cases []Case, errnos []syscall.Errno, workers int) []Outcome {
	t.Helper()
	out := make([]Outcome, len(cases))
	err := forEach(cases, workers, func(i int, c Case) error {
		o := Outcome{Errno: errnos[i], After: map[string]Stat{}}
		for _, p := range c.Paths() {
			st, err := r.Lstat(path.Join(caseDir(i), p))
			if err != nil {
				return fmt.Errorf("lstat %s: %w", p, err)
			}
			o.After[p] = st
		}
		out[i] = o
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// Without returns the cases skip gives no reason to leave out, and logs
// how many it left out for each reason: a target that cannot express an
// operation at all (a protocol without access(2)) is not tested on it.
func Without(t testing.TB, cases []Case, skip func(Case) string) []Case {
	t.Helper()
	var kept []Case
	reasons := map[string]int{}
	for _, c := range cases {
		if why := skip(c); why != "" {
			reasons[why]++
			continue
		}
		kept = append(kept, c)
	}
	whys := make([]string, 0, len(reasons))
	for w := range reasons {
		whys = append(whys, w)
	}
	sort.Strings(whys)
	for _, w := range whys {
		t.Logf("not run here: %d cases: %s", reasons[w], w)
	}
	return kept
}

// maxReported bounds the mismatches Compare reports one by one, unless
// COWFS_PERMCASES_ALL is set (to list them all).
const maxReported = 40

// Compare fails t for every case whose outcome got differs from want,
// reporting the first few in full, and logs how many cases it compared.
func Compare(t testing.TB, cases []Case, want, got []Outcome) {
	t.Helper()
	if len(want) != len(cases) || len(got) != len(cases) {
		t.Fatalf("%d cases, %d outcomes wanted, %d got", len(cases), len(want), len(got))
	}
	limit := maxReported
	if os.Getenv("COWFS_PERMCASES_ALL") != "" {
		limit = len(cases)
	}
	var bad int
	for i, c := range cases {
		if want[i].equal(got[i]) {
			continue
		}
		bad++
		if bad <= limit {
			t.Errorf("%s (%v as %v):\n\twant %v\n\tgot  %v", c.Name, c.Op, c.User, want[i], got[i])
		}
	}
	if bad > limit {
		t.Errorf("... and %d more mismatches", bad-limit)
	}
	t.Logf("compared %d cases: %d differ", len(cases), bad)
}
