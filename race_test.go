//go:build race

package cowfs

// raceDetector is whether the tests run under the race detector, which
// makes the largest tests too slow and too big (a 1 GiB run takes minutes
// and 12 GiB of memory), so they run smaller.
const raceDetector = true
