package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"

	"github.com/cowfs/cowfs"
	"github.com/cowfs/cowfs/ninep"
)

// runServe serves every volume of a store over 9P2000 and 9P2000.L until
// SIGINT or SIGTERM, then closes the connections and commits.
func runServe(args []string, stdout, stderr io.Writer) (err error) {
	fl := newFlags("serve", stderr)
	spec := storeFlag(fl)
	listen := fl.String("listen", "127.0.0.1:5640", "where to listen: host:port (TCP) or a path (unix socket)")
	cacheSize := cacheSizeFlag(fl)
	open := fl.Bool("unauthenticated-network", false, "allow a TCP address that is not loopback: 9P has no authentication here,\n"+
		"so anyone who can reach the address can read and change every volume")
	fl.Usage = func() {
		fmt.Fprintln(stderr, "usage: cowfs serve [--store S] [--listen ADDR] [--cache-size N] [--unauthenticated-network]")
		fmt.Fprintln(stderr, "Serves every volume over 9P2000 and 9P2000.L: the attach name selects the volume (default main),")
		fmt.Fprintln(stderr, "VOLUME@SNAPSHOT a snapshot, read-only. Prints a line ending in \"ready\" once listening.")
		fl.PrintDefaults()
	}
	if err := parseFlags(fl, args); err != nil {
		return err
	}
	network, addr := "tcp", *listen
	if strings.Contains(addr, "/") {
		network = "unix"
	} else if !*open {
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			return usageErrorf("--listen %q: %v", addr, err)
		}
		if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
			return usageErrorf("--listen %s is not a loopback address: 9P here is unauthenticated; add --unauthenticated-network to serve it anyway", addr)
		}
	}
	cache, err := cacheSizeOf(*cacheSize)
	if err != nil {
		return err
	}
	f, _, where, err := openFS(*spec, mayCreate, &cowfs.Options{CommitInterval: mountCommitInterval, CacheBytes: cache})
	if err != nil {
		return err
	}
	defer closeFS(f, where, &err)
	if _, err := f.Volume("main"); errors.Is(err, os.ErrNotExist) {
		if _, err := f.CreateVolume("main"); err != nil {
			return err
		}
	}
	ln, err := net.Listen(network, addr)
	if err != nil {
		return err
	}
	if network == "unix" {
		defer os.Remove(addr)
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigs)
	fmt.Fprintf(stdout, "cowfs serve: store %s on %s %s: ready\n", where, network, ln.Addr())

	srv := &ninep.Server{FS: f}
	if where != "mem:" {
		srv.StoreDir = where
	}
	var mu sync.Mutex
	conns := map[net.Conn]bool{}
	var wg sync.WaitGroup
	go func() {
		<-sigs
		ln.Close()
		mu.Lock()
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
	}()
	for {
		c, err := ln.Accept()
		if err != nil {
			break
		}
		mu.Lock()
		conns[c] = true
		mu.Unlock()
		wg.Go(func() {
			srv.Serve(c)
			mu.Lock()
			delete(conns, c)
			mu.Unlock()
		})
	}
	wg.Wait()
	return nil
}
