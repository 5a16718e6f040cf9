// Package ninep serves the volumes of a cowfs FS over 9P: 9P2000 (Plan 9,
// 9fans.net/go/plan9/client) and 9P2000.L (Linux's v9fs, diod's tools),
// the dialect chosen by each connection's Tversion.
//
// The attach name selects the volume ("" is "main"); "VOLUME@SNAPSHOT"
// attaches to a snapshot, read-only. Every volume's root has the hidden
// directory .cowfs (found by walking to it, absent from listings) holding
// the control file ctl of package ctl (write a command, read its reply),
// snapshots/, the volume's snapshots, read-only, and files/, the file
// snapshots ctl's snapshot-file serves: the control namespace the FUSE
// mount serves too (package internal/control; control.go here).
//
// The codec (msg.go) is our own for both dialects: one table of field
// layouts per dialect drives decoding and encoding. A connection (conn.go)
// serves its requests one at a time, in order. Fids (fid.go) address files
// by volume and path, as the FUSE frontend does; an open fid holds its
// open file. Permission bits are checked against the attaching user
// (access.go): 9P2000.L's numeric n_uname, or 9P2000's user name looked up
// in the machine's user database. Nothing authenticates that user: serve
// only where every client may act as any user.
package ninep
