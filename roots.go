package cowfs

import (
	"strconv"
	"strings"
)

// Store roots. Every tree the engine keeps is bound to a named root in the
// store; the name says what the tree is:
//
//	v:NAME         volume NAME (a volume node, volnode.go)
//	s:VOLUME:NAME  snapshot NAME of volume VOLUME (a volume node)
//	q:view:N       the snapshot a view holds (a rope, view.go), N in decimal
//	q:zombies      the list of blobs waiting for deletion (zombies.go)
//
// Volume and snapshot names are 1 to 100 of [A-Za-z0-9._-] (validName) and
// hold no ':', so snapPrefix(vol) starts the roots of vol's snapshots and of
// no other volume's.
const (
	volumeRootPrefix   = "v:"
	snapshotRootPrefix = "s:"
	viewRootPrefix     = "q:view:"
	zombieRoot         = "q:zombies"
)

// volRoot is the root of volume name.
func volRoot(name string) string { return volumeRootPrefix + name }

// snapRoot is the root of snapshot name of volume vol.
func snapRoot(vol, name string) string { return snapPrefix(vol) + name }

// snapPrefix starts the roots of volume vol's snapshots.
func snapPrefix(vol string) string { return snapshotRootPrefix + vol + ":" }

// viewRootName is the root of the snapshot view n holds.
func viewRootName(n uint64) string { return viewRootPrefix + strconv.FormatUint(n, 10) }

// isVolumeRoot reports whether root name holds a volume node: a volume's or
// a snapshot's.
func isVolumeRoot(name string) bool {
	return strings.HasPrefix(name, volumeRootPrefix) || strings.HasPrefix(name, snapshotRootPrefix)
}
