//go:build !race

package cowfs

// raceDetector is whether the tests run under the race detector.
const raceDetector = false
