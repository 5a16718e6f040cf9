//go:build !race

package cdc

// raceEnabled is true when the race detector is on; slow tests do less work.
const raceEnabled = false
