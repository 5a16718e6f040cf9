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

	"github.com/spf13/cobra"

	"github.com/cowfs/cowfs"
	"github.com/cowfs/cowfs/ninep"
)

// serveFlags are the flags of cowfs serve.
type serveFlags struct {
	store, listen, cacheSize, atime string
	open                            bool // --unauthenticated-network
	logs                            logFlags
}

// serveCommand is `cowfs serve`.
func serveCommand() *cobra.Command {
	var fl serveFlags
	c := &cobra.Command{
		Use:   "serve [--store S] [--listen ADDR] [flags]",
		Short: "serve every volume over 9P2000 until interrupted",
		Long: "serve serves every volume of the store over 9P2000 and 9P2000.L: the attach\n" +
			"name selects the volume (default main), VOLUME@SNAPSHOT a snapshot,\n" +
			"read-only. It prints a line ending in \"ready\" on stdout once listening, and\n" +
			"in normal operation nothing else. SIGINT or SIGTERM closes the connections,\n" +
			"commits and exits 0. 9P here has no authentication: an address that is\n" +
			"not loopback needs --unauthenticated-network. Reads update access times\n" +
			"as --atime says (relatime by default). What an operator must act on is\n" +
			"logged on stderr (--log-level, --log-format).",
		Args:              noArgs,
		ValidArgsFunction: cobra.NoFileCompletions,
		RunE: func(c *cobra.Command, _ []string) error {
			return runServe(&fl, c.OutOrStdout(), c.ErrOrStderr())
		},
	}
	storeFlag(c, &fl.store)
	c.Flags().StringVar(&fl.listen, "listen", "127.0.0.1:5640", "listen on `ADDR`: host:port (TCP) or a path (unix socket)")
	cacheSizeFlag(c, &fl.cacheSize)
	atimeFlag(c, &fl.atime)
	c.Flags().BoolVar(&fl.open, "unauthenticated-network", false, "allow a TCP address that is not loopback: 9P has no authentication here,\n"+
		"so anyone who can reach the address can read and change every volume")
	fl.logs.add(c)
	return c
}

// runServe serves every volume of a store over 9P2000 and 9P2000.L until
// SIGINT or SIGTERM, then closes the connections and commits.
func runServe(fl *serveFlags, stdout, stderr io.Writer) (err error) {
	logger, err := fl.logs.logger(stderr)
	if err != nil {
		return err
	}
	defer captureStdLog(logger)()
	network, addr := "tcp", fl.listen
	if strings.Contains(addr, "/") {
		network = "unix"
	} else if !fl.open {
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			if aerr, ok := err.(*net.AddrError); ok {
				err = errors.New(aerr.Err) // without the address again
			}
			return usageErrorf("--listen %q: %v (want host:port, or a path for a unix socket)", addr, err)
		}
		if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
			return usageErrorf("--listen %s is not a loopback address: 9P here is unauthenticated; add --unauthenticated-network to serve it anyway", addr)
		}
	}
	cache, err := cacheSizeOf(fl.cacheSize)
	if err != nil {
		return err
	}
	atime, err := atimeOf(fl.atime)
	if err != nil {
		return err
	}
	f, _, where, err := openFS(fl.store, mayCreate, &cowfs.Options{CommitInterval: mountCommitInterval, CacheBytes: cache, Atime: atime, Logger: logger})
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

	srv := &ninep.Server{FS: f, Logger: logger}
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
