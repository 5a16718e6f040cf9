package control

import (
	"strings"
	"sync"
)

// Handle is one open of the control file. Each Write runs one command line
// (a trailing newline is ignored); Read then returns that command's reply,
// or its error text and a newline after a failed Write, up to an end of
// file. It is a stream, like a pipe to the server: it has no offsets. It is
// safe for concurrent use.
type Handle struct {
	exec  func(line string) (string, error)
	mu    sync.Mutex
	reply []byte // what reads return, from the front
}

// NewHandle opens the control file whose commands exec runs: a
// ctl.Server's Exec, or a frontend's wrapper of it.
func NewHandle(exec func(line string) (string, error)) *Handle {
	return &Handle{exec: exec}
}

// Write runs the command line data and returns len(data); if the command
// fails, it returns 0 and the command's error (a *cowfs.Error, whose errno
// the write fails with).
func (h *Handle) Write(data []byte) (int, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	reply, err := h.exec(strings.TrimRight(string(data), "\n"))
	if err != nil {
		h.reply = []byte(err.Error() + "\n")
		return 0, err
	}
	h.reply = []byte(reply)
	return len(data), nil
}

// Read copies what is left of the last reply into p and returns how much;
// 0 is the end of the reply.
func (h *Handle) Read(p []byte) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := copy(p, h.reply)
	h.reply = h.reply[n:]
	return n
}
