package cowfs_test

import (
	"fmt"
	"log"
	"math/rand/v2"
	"os"

	"github.com/cowfs/cowfs"
	"github.com/cowfs/cowfs/store/mem"
)

// An FS runs on a store: here an in-memory one (package store/local keeps
// one in a directory). A volume is a tree of directories and files.
func Example() {
	fsys, err := cowfs.Open(mem.New(), nil)
	if err != nil {
		log.Fatal(err)
	}
	defer fsys.Close() // commits, then closes the store
	vol, err := fsys.CreateVolume("main")
	if err != nil {
		log.Fatal(err)
	}
	if err := vol.MkdirAll("docs/notes", 0o755); err != nil {
		log.Fatal(err)
	}
	if err := vol.WriteFile("docs/notes/hello.txt", []byte("hello, world\n"), 0o644); err != nil {
		log.Fatal(err)
	}
	// Changes live in memory until a commit makes them durable.
	if err := fsys.Commit(); err != nil {
		log.Fatal(err)
	}
	b, err := vol.ReadFile("/docs/notes/hello.txt")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%q\n", b)
	fmt.Println(fsys.Volumes())
	// Output:
	// "hello, world\n"
	// [main] <nil>
}

// newVolume returns an empty volume "main" of a new in-memory FS.
func newVolume() (*cowfs.FS, *cowfs.Volume) {
	fsys, err := cowfs.Open(mem.New(), nil)
	if err != nil {
		log.Fatal(err)
	}
	vol, err := fsys.CreateVolume("main")
	if err != nil {
		log.Fatal(err)
	}
	return fsys, vol
}

// randomBytes returns n bytes that do not repeat (the same every run).
func randomBytes(n int) []byte {
	b := make([]byte, n)
	r := rand.NewChaCha8([32]byte{})
	r.Read(b)
	return b
}

// A clone shares all of its source's data and costs O(1) whatever it
// holds; Usage, like du, shows the data stored once.
func ExampleVolume_Clone() {
	fsys, vol := newVolume()
	defer fsys.Close()
	if err := vol.WriteFile("big", randomBytes(1<<20), 0o644); err != nil {
		log.Fatal(err)
	}
	if err := vol.Clone("big", "copy"); err != nil {
		log.Fatal(err)
	}
	// Both names hold the bytes; removing either frees nothing.
	u, err := vol.Usage("big")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("big: %d bytes, %d shared, %d its own\n", u.Logical, u.Shared, u.Exclusive)
	u, err = vol.Usage("/")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("volume: %d bytes in files, %d stored\n", u.Logical, u.Shared+u.Exclusive)
	// Output:
	// big: 1048576 bytes, 1048576 shared, 0 its own
	// volume: 2097152 bytes in files, 1048576 stored
}

// CopyRange shares a byte range of one file into another at any offsets,
// aligned or not: no byte is copied.
func ExampleCopyRange() {
	fsys, vol := newVolume()
	defer fsys.Close()
	if err := vol.WriteFile("src", []byte("hello, copy-on-write world"), 0o644); err != nil {
		log.Fatal(err)
	}
	if err := vol.WriteFile("dst", []byte("0123456789"), 0o644); err != nil {
		log.Fatal(err)
	}
	src, err := vol.Open("src")
	if err != nil {
		log.Fatal(err)
	}
	defer src.Close()
	dst, err := vol.OpenFile("dst", os.O_RDWR, 0)
	if err != nil {
		log.Fatal(err)
	}
	defer dst.Close()
	// The 13 bytes at 7 of src replace those at 3 of dst, and extend it.
	n, err := cowfs.CopyRange(src, 7, dst, 3, 13)
	if err != nil {
		log.Fatal(err)
	}
	b, err := vol.ReadFile("dst")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(n, string(b))
	// Output:
	// 13 012copy-on-write
}

// A snapshot is a read-only O(1) copy of the whole volume as it is when
// taken; later changes to the volume do not show in it.
func ExampleVolume_Snapshot() {
	fsys, vol := newVolume()
	defer fsys.Close()
	if err := vol.WriteFile("config", []byte("version 1"), 0o644); err != nil {
		log.Fatal(err)
	}
	if err := vol.Snapshot("before"); err != nil {
		log.Fatal(err)
	}
	if err := vol.WriteFile("config", []byte("version 2"), 0o644); err != nil {
		log.Fatal(err)
	}
	snap, err := vol.OpenSnapshot("before")
	if err != nil {
		log.Fatal(err)
	}
	old, err := snap.ReadFile("config")
	if err != nil {
		log.Fatal(err)
	}
	now, err := vol.ReadFile("config")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s: %s; %s: %s\n", snap.Name(), old, vol.Name(), now)
	err = snap.WriteFile("config", []byte("version 3"), 0o644)
	fmt.Println(cowfs.Errno(err))
	// Output:
	// main@before: version 1; main: version 2
	// read-only file system
}

// ReadDeferred takes a private snapshot of a byte range in O(log n), reading
// nothing until the view is read. Writes into the view touch only its own
// pages; WriteTo writes back just those pages and shares the rest.
func ExampleFile_ReadDeferred() {
	fsys, vol := newVolume()
	defer fsys.Close()
	f, err := vol.Create("data") // open for reading and writing
	if err != nil {
		log.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(randomBytes(3 * cowfs.PageSize)); err != nil {
		log.Fatal(err)
	}
	view, err := f.ReadDeferred(0, 3*cowfs.PageSize)
	if err != nil {
		log.Fatal(err)
	}
	defer view.Release()
	// Change the view's middle page; the file does not see it.
	if _, err := view.WriteAt([]byte("changed"), cowfs.PageSize+100); err != nil {
		log.Fatal(err)
	}
	written, err := view.WriteTo(f, 0)
	if err != nil {
		log.Fatal(err)
	}
	b := make([]byte, 7)
	if _, err := f.ReadAt(b, cowfs.PageSize+100); err != nil {
		log.Fatal(err)
	}
	fmt.Printf("pages written: %v (%d bytes of %d); the file now reads %q\n", view.Detached(), written, view.Len(), b)
	// Output:
	// pages written: [1] (4096 bytes of 12288); the file now reads "changed"
}

// Volume.Root gives the volume as a tree of Go values, loaded as it is
// walked; a Node shows the tree as it was when the Node was obtained.
func ExampleVolume_Root() {
	fsys, vol := newVolume()
	defer fsys.Close()
	for _, p := range []string{"src/cmd", "src/lib"} {
		if err := vol.MkdirAll(p, 0o755); err != nil {
			log.Fatal(err)
		}
	}
	for p, s := range map[string]string{"README": "read me\n", "src/cmd/main.go": "package main\n", "src/lib/lib.go": "package lib\n"} {
		if err := vol.WriteFile(p, []byte(s), 0o644); err != nil {
			log.Fatal(err)
		}
	}
	root, err := vol.Root()
	if err != nil {
		log.Fatal(err)
	}
	var walk func(n *cowfs.Node)
	walk = func(n *cowfs.Node) {
		for k, err := range n.Children() { // in name order
			if err != nil {
				log.Fatal(err)
			}
			if k.IsDir() {
				fmt.Println(k.Path() + "/")
				walk(k)
			} else {
				fmt.Println(k.Path(), k.Info().Size())
			}
		}
	}
	walk(root)
	// Output:
	// README 8
	// src/
	// src/cmd/
	// src/cmd/main.go 13
	// src/lib/
	// src/lib/lib.go 12
}
