package ninep

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"runtime/debug"
	"strings"
	"sync"
	"syscall"

	"github.com/cowfs/cowfs"
	"github.com/cowfs/cowfs/internal/control"
)

// Server serves the volumes of FS over 9P2000 and 9P2000.L. One Server
// serves any number of connections at once.
type Server struct {
	FS *cowfs.FS
	// Msize is the largest message size offered; 0 means DefaultMsize.
	Msize uint32
	// Trace, if set, receives a line per message in and out.
	Trace io.Writer
	// Logger receives what an operator must act on: a panic recovered in
	// a handler, at Error with its stack (the request is answered EIO),
	// and a connection that ended with an error, at Warn. nil discards.
	Logger *slog.Logger

	users    users
	nums     *control.Numbers  // set by Serve's first call
	spacesMu sync.Mutex        // guards spaces
	spaces   map[string]*space // control namespaces, by volume name
	once     sync.Once
	traceMu  sync.Mutex

	panicOn uint8 // a message type whose handler panics, for tests; 0: none
	// beforeServe, if set, runs before each request's handler with the
	// request's context, for tests (to hold a request until flushed).
	beforeServe func(ctx context.Context, m *Msg)
}

// logger returns the server's logger; nil Logger discards.
func (s *Server) logger() *slog.Logger {
	if s.Logger == nil {
		return discardLogger
	}
	return s.Logger
}

// discardLogger drops every record.
var discardLogger = slog.New(slog.DiscardHandler)

// Message size limits.
const (
	DefaultMsize = 1<<20 + 24 // 1 MiB of data per read or write
	MinMsize     = 4096       // smaller Tversion msizes are refused
	maxEname     = 1024       // longest Rerror text sent
)

// protoError is an error of the protocol or of a request's arguments,
// with the errno a 9P2000.L client gets and the text a 9P2000 client gets.
type protoError struct {
	errno syscall.Errno
	text  string
}

func (e *protoError) Error() string { return e.text }

func perr(errno syscall.Errno, format string, args ...any) error {
	return &protoError{errno, fmt.Sprintf(format, args...)}
}

// errnoOf is the errno of a request's failure.
func errnoOf(err error) syscall.Errno {
	if errors.Is(err, context.Canceled) {
		return syscall.EINTR // flushed, or the connection closed
	}
	var p *protoError
	if errors.As(err, &p) {
		return p.errno
	}
	return cowfs.Errno(err)
}

// textOf is the Rerror text of a request's failure: the protocol's own
// text, or the errno's.
func textOf(err error) string {
	var p *protoError
	if errors.As(err, &p) {
		return p.text
	}
	return cowfs.Errno(err).Error()
}

// conn is one client connection. Its requests are served one at a time,
// in order, so a reply never overtakes an earlier one and Tflush always
// finds its request answered. A reader goroutine reads ahead, so that a
// Tflush cancels the request it names while that runs, and the end of the
// connection cancels every request (ctx).
type conn struct {
	srv     *Server
	remote  string // the client's address, for the log
	r       *bufio.Reader
	w       *bufio.Writer
	dialect Dialect
	msize   uint32
	fids    map[uint32]*fid
	out     []byte // the reply being encoded
	data    []byte // the data of the reply being made

	ctx  context.Context // cancelled when the connection ends
	rctx context.Context // the context of the request being served
	quit chan struct{}   // closed when the conversation is over

	mu      sync.Mutex       // guards pending
	pending map[uint16]*call // requests read and not yet answered, by tag
}

// call is a request read and not yet answered: its cancel ends its
// context (a Tflush naming it, or the end of the connection).
type call struct {
	ctx    context.Context
	cancel context.CancelFunc
}

// errFraming ends a connection: its byte stream can no longer be split
// into messages.
var errFraming = errors.New("9P framing broken")

// readAhead bounds the requests read and not yet served of a connection.
const readAhead = 64

// Serve runs one 9P conversation over rwc until the client hangs up or
// breaks the framing (a size field under 7), then closes rwc and every
// fid of the conversation. Malformed, oversized, unknown or out-of-order
// messages get an error reply and the conversation goes on. When reading
// ends (the client hung up, or rwc was closed), the requests still
// running or waiting are cancelled: their engine calls fail. It returns
// nil when the client hung up between messages or rwc was closed under it
// (net.ErrClosed: the server is shutting down); any other end (a broken
// frame, a failed read or write) it logs at Warn, with the client's
// address if rwc has a RemoteAddr, and returns.
func (s *Server) Serve(rwc io.ReadWriteCloser) error {
	s.once.Do(func() { s.nums, s.spaces = control.NewNumbers(), map[string]*space{} })
	ctx, cancel := context.WithCancel(context.Background())
	c := &conn{
		srv:     s,
		r:       bufio.NewReaderSize(rwc, 64<<10),
		w:       bufio.NewWriterSize(rwc, 64<<10),
		msize:   s.maxMsize(),
		fids:    map[uint32]*fid{},
		ctx:     ctx,
		quit:    make(chan struct{}),
		pending: map[uint16]*call{},
	}
	if a, ok := rwc.(interface{ RemoteAddr() net.Addr }); ok {
		c.remote = a.RemoteAddr().String()
	}
	defer rwc.Close()
	defer c.clunkAll()
	defer cancel()
	defer close(c.quit)
	reqs := make(chan request, readAhead)
	go c.readLoop(reqs, cancel)
	err := c.converse(reqs)
	if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) {
		return nil
	}
	s.logger().Warn("9P connection ended with an error", "remote", c.remote, "err", err)
	return err
}

// readLoop reads requests into reqs until reading fails; then it cancels
// the connection's context and sends the failure as the last request. It
// waits for each Tversion to be served, since that decides how the next
// messages read (dialect, msize).
func (c *conn) readLoop(reqs chan<- request, cancel context.CancelFunc) {
	for {
		req, err := c.read()
		if err != nil {
			cancel()
			select {
			case reqs <- request{end: err}:
			case <-c.quit:
			}
			return
		}
		if req.m.Type == Tflush && req.err == nil {
			c.flush(req.m.Oldtag)
		}
		req.call = c.begin(req.m.Tag)
		if req.m.Type == Tversion {
			req.served = make(chan struct{})
		}
		select {
		case reqs <- req:
		case <-c.quit:
			req.call.cancel()
			return
		}
		if req.served != nil {
			select {
			case <-req.served:
			case <-c.quit:
				return
			}
		}
	}
}

// begin registers a request with tag and returns its call, whose context
// is the connection's child.
func (c *conn) begin(tag uint16) *call {
	ctx, cancel := context.WithCancel(c.ctx)
	k := &call{ctx: ctx, cancel: cancel}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, dup := c.pending[tag]; !dup {
		c.pending[tag] = k // a tag in use twice: the first one can be flushed
	}
	return k
}

// done forgets a request's call before its reply is sent (the client may
// use the tag again once it has the reply).
func (c *conn) done(tag uint16, k *call) {
	c.mu.Lock()
	if c.pending[tag] == k {
		delete(c.pending, tag)
	}
	c.mu.Unlock()
	k.cancel()
}

// flush cancels the request tag names, if it was read and not answered:
// it ends sooner, and its reply comes before Rflush.
func (c *conn) flush(tag uint16) {
	c.mu.Lock()
	k := c.pending[tag]
	c.mu.Unlock()
	if k != nil {
		k.cancel()
	}
}

// converse serves requests until reading or writing fails; an end of
// input between messages is io.EOF.
func (c *conn) converse(reqs <-chan request) error {
	for {
		req := <-reqs
		if req.end != nil {
			c.w.Flush()
			return req.end
		}
		c.trace("<-", req.m, req.terr)
		c.rctx = req.call.ctx
		if req.err != nil {
			c.done(req.m.Tag, req.call)
			c.replyError(req.m, req.err)
		} else {
			c.serve(req.m, req.call)
		}
		c.rctx = nil
		if req.served != nil {
			close(req.served)
		}
		if len(reqs) == 0 {
			if err := c.w.Flush(); err != nil {
				return err
			}
		}
	}
}

func (s *Server) maxMsize() uint32 {
	if s.Msize == 0 {
		return DefaultMsize
	}
	return max(s.Msize, MinMsize)
}

// request is a message read, or the error to answer it with, or (end)
// the failure that ended reading.
type request struct {
	m      *Msg
	err    error
	terr   error         // what the trace line of m says
	end    error         // reading failed: no more requests
	call   *call         // m's context
	served chan struct{} // closed once a Tversion is served
}

// read reads the next message. A message longer than msize is skipped and
// answered with an error; a size field under 7 breaks the framing.
func (c *conn) read() (request, error) {
	var hdr [headerSz]byte
	if _, err := io.ReadFull(c.r, hdr[:4]); err != nil {
		return request{}, err
	}
	size := binary.LittleEndian.Uint32(hdr[:])
	if size < headerSz {
		return request{}, fmt.Errorf("%w: message size %d", errFraming, size)
	}
	if _, err := io.ReadFull(c.r, hdr[4:]); err != nil {
		return request{}, unexpected(err)
	}
	m := &Msg{Type: hdr[4], Tag: binary.LittleEndian.Uint16(hdr[5:])}
	if size > c.msize {
		if _, err := io.CopyN(io.Discard, c.r, int64(size-headerSz)); err != nil {
			return request{}, unexpected(err)
		}
		return request{m: m, err: perr(syscall.EMSGSIZE, "message of %d bytes longer than msize %d", size, c.msize)}, nil
	}
	b := make([]byte, size) // the message's Data stays in it while it waits
	copy(b, hdr[:])
	if _, err := io.ReadFull(c.r, b[headerSz:]); err != nil {
		return request{}, unexpected(err)
	}
	dm, err := Unmarshal(c.dialect, b)
	if err != nil {
		if c.dialect == NoDialect && m.Type != Tversion {
			err = perr(syscall.EPROTO, "%s before Tversion", TypeName(m.Type))
		} else if errors.Is(err, errUnknownType) {
			err = perr(syscall.EOPNOTSUPP, "%v", err)
		} else {
			err = perr(syscall.EINVAL, "%v", err)
		}
		return request{m: m, err: err, terr: err}, nil
	}
	if m.Type%2 != 0 {
		err := perr(syscall.EPROTO, "%s is a reply", TypeName(m.Type))
		return request{m: m, err: err, terr: err}, nil
	}
	return request{m: dm}, nil
}

// unexpected turns an end of input inside a message into a framing error.
func unexpected(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("%w: %v", errFraming, io.ErrUnexpectedEOF)
	}
	return err
}

func (c *conn) trace(dir string, m *Msg, err error) {
	if c.srv.Trace == nil {
		return
	}
	c.srv.traceMu.Lock()
	defer c.srv.traceMu.Unlock()
	if err != nil {
		fmt.Fprintf(c.srv.Trace, "%s %v: %v\n", dir, m, err)
	} else {
		fmt.Fprintf(c.srv.Trace, "%s %v\n", dir, m)
	}
}

// handler serves one request type: it fills in r (type and tag are set
// already) or returns the error to answer with.
type handler func(c *conn, m, r *Msg) error

var handlers map[uint8]handler

func init() {
	handlers = map[uint8]handler{
		Tversion: (*conn).version,
		Tauth:    (*conn).auth,
		Tattach:  (*conn).attach,
		Tflush:   func(c *conn, m, r *Msg) error { return nil },
		Twalk:    (*conn).walk,
		Tread:    (*conn).readReq,
		Twrite:   (*conn).writeReq,
		Tclunk:   (*conn).clunk,
		Tremove:  (*conn).remove,
		// 9P2000
		Topen:   (*conn).open,
		Tcreate: (*conn).create,
		Tstat:   (*conn).stat,
		Twstat:  (*conn).wstat,
		// 9P2000.L
		Tstatfs:      (*conn).statfs,
		Tlopen:       (*conn).lopen,
		Tlcreate:     (*conn).lcreate,
		Tsymlink:     (*conn).symlink,
		Tmknod:       (*conn).mknod,
		Trename:      (*conn).rename,
		Treadlink:    (*conn).readlink,
		Tgetattr:     (*conn).getattr,
		Tsetattr:     (*conn).setattr,
		Txattrwalk:   (*conn).xattrwalk,
		Txattrcreate: (*conn).xattrcreate,
		Treaddir:     (*conn).readdir,
		Tfsync:       (*conn).fsync,
		Tlock:        noLocks,
		Tgetlock:     noLocks,
		Tlink:        (*conn).link,
		Tmkdir:       (*conn).mkdir,
		Trenameat:    (*conn).renameat,
		Tunlinkat:    (*conn).unlinkat,
	}
}

// catchPanics makes a handler's panic an EIO reply; FuzzServe turns it
// off to find them.
var catchPanics = true

// noLocks answers Tlock and Tgetlock: file locks are not served.
func noLocks(c *conn, m, r *Msg) error { return perr(syscall.ENOLCK, "locks are not served over 9P") }

// serve answers one well-formed request. A panic in a handler is a bug; it
// is logged at Error with its stack and answered as EIO rather than taking
// the server down.
func (c *conn) serve(m *Msg, k *call) {
	r := &Msg{Type: m.Type + 1, Tag: m.Tag}
	err := func() (err error) {
		defer func() {
			if !catchPanics {
				return
			}
			if v := recover(); v != nil {
				c.srv.logger().Error("panic in a 9P handler; the request is answered EIO", "op", TypeName(m.Type),
					"remote", c.remote, "panic", v, "stack", string(debug.Stack()))
				err = perr(syscall.EIO, "internal error serving %s: %v", TypeName(m.Type), v)
			}
		}()
		if c.srv.panicOn != 0 && m.Type == c.srv.panicOn {
			panic("panicOn is set")
		}
		if c.srv.beforeServe != nil {
			c.srv.beforeServe(c.rctx, m)
		}
		return handlers[m.Type](c, m, r)
	}()
	c.done(m.Tag, k)
	if err != nil {
		c.replyError(m, err)
		return
	}
	c.send(r)
}

func (c *conn) replyError(m *Msg, err error) {
	r := &Msg{Tag: m.Tag}
	if c.dialect == Linux {
		r.Type, r.Ecode = Rlerror, uint32(errnoOf(err))
	} else {
		r.Type, r.Ename = Rerror, textOf(err)
		if len(r.Ename) > maxEname {
			r.Ename = r.Ename[:maxEname]
		}
	}
	c.trace("->", r, nil)
	c.write(r)
}

func (c *conn) send(r *Msg) {
	c.trace("->", r, nil)
	c.write(r)
}

// write encodes and sends r; a reply that would exceed msize is answered
// with an error instead.
func (c *conn) write(r *Msg) {
	out, err := r.Marshal(c.dialect, c.out[:0])
	if err == nil && uint32(len(out)) > c.msize {
		err = perr(syscall.ERANGE, "reply of %d bytes longer than msize %d", len(out), c.msize)
	}
	if err != nil {
		if r.Type == Rerror || r.Type == Rlerror {
			return // cannot happen: errors are short and always encodable
		}
		c.replyError(r, err)
		return
	}
	c.out = out
	c.w.Write(out) // a write error shows at the next flush
}

// version starts a new session: every fid is clunked and the dialect and
// msize are negotiated anew.
func (c *conn) version(m, r *Msg) error {
	if m.Msize < MinMsize {
		return perr(syscall.EINVAL, "msize %d is under the least served, %d", m.Msize, MinMsize)
	}
	c.clunkAll()
	c.msize = min(m.Msize, c.srv.maxMsize())
	r.Msize = c.msize
	switch {
	case strings.HasPrefix(m.Version, "9P2000.L"):
		c.dialect, r.Version = Linux, "9P2000.L"
	case strings.HasPrefix(m.Version, "9P2000"):
		c.dialect, r.Version = Plan9, "9P2000"
	default:
		c.dialect, r.Version = NoDialect, "unknown"
	}
	return nil
}

func (c *conn) auth(m, r *Msg) error {
	// ENOENT is what diod answers, and what its clients take as "go on
	// without authentication".
	return perr(syscall.ENOENT, "authentication not required")
}

// clunkAll clunks every fid: at a Tversion, and when the connection ends
// (then without the cancelled context, so that what a clunk sets, an
// extended attribute or an ORCLOSE removal, is done).
func (c *conn) clunkAll() {
	ctx := context.WithoutCancel(c.ctx)
	for n, f := range c.fids {
		f.clunk(ctx)
		delete(c.fids, n)
	}
}

// fid returns the fid numbered n.
func (c *conn) fid(n uint32) (*fid, error) {
	f, ok := c.fids[n]
	if !ok {
		return nil, perr(syscall.EBADF, "unknown fid %d", n)
	}
	return f, nil
}

// fidStat returns the fid numbered n and the stat of what it stands for.
func (c *conn) fidStat(n uint32) (*fid, *cowfs.Stat, error) {
	f, err := c.fid(n)
	if err != nil {
		return nil, nil, err
	}
	st, err := f.stat(c.rctx)
	return f, st, err
}

// maxFids bounds the fids of one connection, and so what it can hold.
const maxFids = 1 << 16

// newFid checks that fid number n is free and that one more fits.
func (c *conn) newFid(n uint32) error {
	if _, ok := c.fids[n]; ok || n == NoFid {
		return perr(syscall.EBADF, "fid %d in use", n)
	}
	if len(c.fids) >= maxFids {
		return perr(syscall.EMFILE, "more than %d fids", maxFids)
	}
	return nil
}

func (c *conn) attach(m, r *Msg) error {
	if err := c.newFid(m.Fid); err != nil {
		return err
	}
	if m.Afid != NoFid {
		return perr(syscall.EBADF, "no authentication fid %d: authentication is not required", m.Afid)
	}
	nuname := uint32(NoUname)
	if c.dialect == Linux {
		nuname = m.NUname
	}
	who, err := c.srv.users.credOf(m.Uname, nuname)
	if err != nil {
		return err
	}
	vol, err := c.srv.volume(m.Aname)
	if err != nil {
		return err
	}
	root := vol.RootInode()
	f := &fid{srv: c.srv, sp: c.srv.space(vol), vol: vol, base: vol, node: root, rootIno: root.Ino(),
		user: who, versioned: c.dialect == Plan9}
	if r.Qid, err = f.qid(c.rctx); err != nil {
		f.clunk(c.rctx)
		return err
	}
	c.fids[m.Fid] = f
	return nil
}

// volume returns the volume an attach name selects: "" is "main", and
// "VOLUME@SNAPSHOT" a snapshot of VOLUME, read-only.
func (s *Server) volume(aname string) (*cowfs.Volume, error) {
	name, snap, isSnap := strings.Cut(aname, "@")
	if name == "" {
		name = "main"
	}
	v, err := s.FS.Volume(name)
	if err != nil {
		return nil, err
	}
	if isSnap {
		return v.OpenSnapshot(snap)
	}
	return v, nil
}

func (c *conn) walk(m, r *Msg) error {
	f, err := c.fid(m.Fid)
	if err != nil {
		return err
	}
	// walk(5) forbids walking an open fid; 9P2000.L clients may clone
	// one (to an unopened new fid), as diod allows.
	if f.opened() && (m.Newfid == m.Fid || c.dialect == Plan9) {
		return perr(syscall.EBUSY, "walk of open fid %d", m.Fid)
	}
	if m.Newfid != m.Fid {
		if err := c.newFid(m.Newfid); err != nil {
			return err
		}
	}
	nf := f.walker()
	for i, name := range m.Names {
		q, err := nf.step(c.rctx, name)
		if err != nil {
			nf.clunk(c.rctx)
			if i == 0 {
				return err
			}
			return nil // a partial walk: newfid is left as it was
		}
		r.Qids = append(r.Qids, q)
	}
	if m.Newfid == m.Fid {
		f.clunk(c.rctx) // not open: nothing to do but release its handle
	}
	c.fids[m.Newfid] = nf
	return nil
}

func (c *conn) clunk(m, r *Msg) error {
	f, err := c.fid(m.Fid)
	if err != nil {
		return err
	}
	delete(c.fids, m.Fid)
	return f.clunk(c.rctx)
}

// remove removes the file of a fid and clunks the fid, even when the
// removal fails.
func (c *conn) remove(m, r *Msg) error {
	f, err := c.fid(m.Fid)
	if err != nil {
		return err
	}
	delete(c.fids, m.Fid)
	defer f.clunk(c.rctx)
	return f.remove(c.rctx)
}

func (c *conn) readReq(m, r *Msg) error {
	f, err := c.fid(m.Fid)
	if err != nil {
		return err
	}
	n := min(m.Count, c.msize-ioHeader)
	if c.dialect == Plan9 && f.dir != nil {
		r.Data, err = c.readStats(f, m.Offset, n)
		return err
	}
	r.Data, err = f.read(c.rctx, c.scratch()[:n], m.Offset)
	return err
}

func (c *conn) writeReq(m, r *Msg) error {
	f, err := c.fid(m.Fid)
	if err != nil {
		return err
	}
	n, err := f.write(c.rctx, m.Data, m.Offset)
	r.Count = uint32(n)
	if n > 0 {
		return nil // a short write reports what it wrote
	}
	return err
}
