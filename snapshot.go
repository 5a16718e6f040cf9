package cowfs

import (
	"errors"
	"sort"
	"strings"
	"syscall"
	"time"
)

// SnapshotInfo describes a snapshot.
type SnapshotInfo struct {
	Name    string
	Created time.Time
}

// Snapshot makes a read-only O(1) snapshot of the volume as it is now
// (committing first).
func (v *Volume) Snapshot(name string) error {
	v.f.mu.Lock()
	defer v.f.mu.Unlock()
	if v.readOnly {
		return errorf("snapshot", name, syscall.EROFS, nil)
	}
	if !validName(name) {
		return errorf("snapshot", name, syscall.EINVAL, errors.New("names are 1-100 of [A-Za-z0-9._-]"))
	}
	return v.f.linkRootLocked("snapshot", v.rootName, snapRoot(v.name, name), name)
}

// Snapshots lists the volume's snapshots, sorted by name.
func (v *Volume) Snapshots() ([]SnapshotInfo, error) {
	v.f.mu.Lock()
	defer v.f.mu.Unlock()
	roots, err := v.f.st.ListRoots(v.f.ioCtx())
	if err != nil {
		return nil, wrapIO("list snapshots", v.name, err)
	}
	var out []SnapshotInfo
	for _, r := range roots {
		if name, ok := strings.CutPrefix(r.Name, snapPrefix(v.name)); ok {
			m, err := v.f.loadVolume(r.ID)
			if err != nil {
				return nil, wrapIO("list snapshots", v.name, err)
			}
			out = append(out, SnapshotInfo{Name: name, Created: time.Unix(0, m.created)})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// OpenSnapshot opens a snapshot of the volume, read-only.
func (v *Volume) OpenSnapshot(name string) (*Volume, error) {
	v.f.mu.Lock()
	defer v.f.mu.Unlock()
	return v.f.openLocked(snapRoot(v.name, name), v.name+"@"+name, true)
}

// DeleteSnapshot deletes a snapshot, releasing space only it held. It fails
// with EBUSY while files of the snapshot are open.
func (v *Volume) DeleteSnapshot(name string) error {
	v.f.mu.Lock()
	defer v.f.mu.Unlock()
	return v.f.dropRootLocked("delete snapshot", name, snapRoot(v.name, name))
}
