package ninep

import (
	"encoding/binary"
	"errors"
	"fmt"
	"syscall"
)

// Dialect is a 9P dialect, chosen by Tversion.
type Dialect uint8

// The dialects the server speaks.
const (
	NoDialect Dialect = iota // before Tversion: only Tversion is valid
	Plan9                    // 9P2000
	Linux                    // 9P2000.L
)

func (d Dialect) String() string {
	switch d {
	case Plan9:
		return "9P2000"
	case Linux:
		return "9P2000.L"
	}
	return "none"
}

// Message types of 9P2000 and 9P2000.L. Each R-message is its T-message + 1.
const (
	Rlerror      = 7
	Tstatfs      = 8
	Tlopen       = 12
	Tlcreate     = 14
	Tsymlink     = 16
	Tmknod       = 18
	Trename      = 20
	Treadlink    = 22
	Tgetattr     = 24
	Tsetattr     = 26
	Txattrwalk   = 30
	Txattrcreate = 32
	Treaddir     = 40
	Tfsync       = 50
	Tlock        = 52
	Tgetlock     = 54
	Tlink        = 70
	Tmkdir       = 72
	Trenameat    = 74
	Tunlinkat    = 76
	Tversion     = 100
	Tauth        = 102
	Tattach      = 104
	Rerror       = 107
	Tflush       = 108
	Twalk        = 110
	Topen        = 112
	Tcreate      = 114
	Tread        = 116
	Twrite       = 118
	Tclunk       = 120
	Tremove      = 122
	Tstat        = 124
	Twstat       = 126
)

// Protocol constants.
const (
	NoTag    = 0xFFFF     // the tag of Tversion
	NoFid    = 0xFFFFFFFF // "no fid", as in Tattach's afid
	NoUname  = 0xFFFFFFFF // "no numeric user" in Tattach's n_uname
	MaxWelem = 16         // most names in one Twalk
	headerSz = 7          // size[4] type[1] tag[2]
	// ioHeader is what Twrite and Rread add to their data, rounded up as
	// Plan 9's IOHDRSZ: msize − ioHeader is the iounit.
	ioHeader = 24
)

// Qid is the server's identity of a file.
type Qid struct {
	Type uint8
	Vers uint32
	Path uint64
}

// Qid types.
const (
	QTDir     = 0x80
	QTAppend  = 0x40
	QTExcl    = 0x20
	QTAuth    = 0x08
	QTSymlink = 0x02
	QTFile    = 0x00
)

// Attr is the body of Rgetattr and Tsetattr (9P2000.L). Rgetattr uses
// every field; Tsetattr only Mode, UID, GID, Size and the times.
type Attr struct {
	Valid               uint64
	Qid                 Qid
	Mode, UID, GID      uint32
	Nlink, Rdev, Size   uint64
	Blksize, Blocks     uint64
	Atime, Mtime, Ctime Timespec
	Btime               Timespec
	Gen, DataVersion    uint64
}

// Timespec is a time as seconds and nanoseconds.
type Timespec struct{ Sec, Nsec uint64 }

// Statfs is the body of Rstatfs.
type Statfs struct {
	Type, Bsize           uint32
	Blocks, Bfree, Bavail uint64
	Files, Ffree, Fsid    uint64
	Namelen               uint32
}

// Lock is the body of Tlock, Tgetlock and Rgetlock.
type Lock struct {
	Type          uint8
	Flags         uint32 // Tlock only
	Start, Length uint64
	ProcID        uint32
	ClientID      string
}

// Msg is one 9P message of either dialect: the fields its type uses are
// set, the others are zero.
type Msg struct {
	Type uint8
	Tag  uint16

	Fid, Afid, Newfid uint32
	Dfid              uint32 // Tmknod, Tmkdir, Tlink, Trename, Trenameat (new dir)
	Msize             uint32
	Version           string
	Uname, Aname      string
	NUname            uint32
	Oldtag            uint16
	Names             []string // Twalk
	Qids              []Qid    // Rwalk
	Qid               Qid
	Iounit            uint32
	OMode             uint8  // Topen, Tcreate (9P2000)
	Perm              uint32 // Tcreate (9P2000)
	Name              string
	NewName           string // Trenameat
	Target            string // Tsymlink, Rreadlink
	Offset            uint64
	Count             uint32
	Data              []byte // Twrite, Rread, Rreaddir
	Stat              []byte // Rstat, Twstat (9P2000): one stat record
	Ename             string // Rerror
	Ecode             uint32 // Rlerror
	Flags             uint32 // Tlopen, Tlcreate, Tunlinkat, Txattrcreate
	Mode              uint32 // Tlcreate, Tmkdir, Tmknod, Tsymlink's gid is Gid
	Gid               uint32
	Major, Minor      uint32
	Mask              uint64 // Tgetattr
	Attr              Attr   // Rgetattr, Tsetattr (Attr.Valid is its valid mask)
	Statfs            Statfs
	Lock              Lock
	Status            uint8  // Rlock
	Size              uint64 // Rxattrwalk, Txattrcreate
	Datasync          uint32 // Tfsync
}

// field is one field of a message layout.
type field uint8

const (
	fFid field = iota
	fAfid
	fNewfid
	fDfid
	fMsize
	fVersion
	fUname
	fAname
	fNUname
	fOldtag
	fNames
	fQids
	fQid
	fIounit
	fOMode
	fPerm
	fName
	fNewName
	fTarget
	fOffset
	fCount
	fData
	fStat
	fEname
	fEcode
	fFlags
	fMode
	fGid
	fMajor
	fMinor
	fMask
	fGetattr
	fSetattr
	fStatfs
	fLock
	fGetlock
	fRgetlock
	fStatus
	fSize
	fDatasync
)

// common holds the layouts both dialects share; plan9Only and linuxOnly
// the rest. A layout lists the fields after size[4] type[1] tag[2].
var (
	common = map[uint8][]field{
		Tversion:     {fMsize, fVersion},
		Tversion + 1: {fMsize, fVersion},
		Tauth + 1:    {fQid},
		Tattach + 1:  {fQid},
		Tflush:       {fOldtag},
		Tflush + 1:   {},
		Twalk:        {fFid, fNewfid, fNames},
		Twalk + 1:    {fQids},
		Tread:        {fFid, fOffset, fCount},
		Tread + 1:    {fData},
		Twrite:       {fFid, fOffset, fData},
		Twrite + 1:   {fCount},
		Tclunk:       {fFid},
		Tclunk + 1:   {},
		Tremove:      {fFid},
		Tremove + 1:  {},
	}
	plan9Only = map[uint8][]field{
		Tauth:       {fAfid, fUname, fAname},
		Tattach:     {fFid, fAfid, fUname, fAname},
		Rerror:      {fEname},
		Topen:       {fFid, fOMode},
		Topen + 1:   {fQid, fIounit},
		Tcreate:     {fFid, fName, fPerm, fOMode},
		Tcreate + 1: {fQid, fIounit},
		Tstat:       {fFid},
		Tstat + 1:   {fStat},
		Twstat:      {fFid, fStat},
		Twstat + 1:  {},
	}
	linuxOnly = map[uint8][]field{
		Tauth:            {fAfid, fUname, fAname, fNUname},
		Tattach:          {fFid, fAfid, fUname, fAname, fNUname},
		Rlerror:          {fEcode},
		Tstatfs:          {fFid},
		Tstatfs + 1:      {fStatfs},
		Tlopen:           {fFid, fFlags},
		Tlopen + 1:       {fQid, fIounit},
		Tlcreate:         {fFid, fName, fFlags, fMode, fGid},
		Tlcreate + 1:     {fQid, fIounit},
		Tsymlink:         {fFid, fName, fTarget, fGid},
		Tsymlink + 1:     {fQid},
		Tmknod:           {fDfid, fName, fMode, fMajor, fMinor, fGid},
		Tmknod + 1:       {fQid},
		Trename:          {fFid, fDfid, fName},
		Trename + 1:      {},
		Treadlink:        {fFid},
		Treadlink + 1:    {fTarget},
		Tgetattr:         {fFid, fMask},
		Tgetattr + 1:     {fGetattr},
		Tsetattr:         {fFid, fSetattr},
		Tsetattr + 1:     {},
		Txattrwalk:       {fFid, fNewfid, fName},
		Txattrwalk + 1:   {fSize},
		Txattrcreate:     {fFid, fName, fSize, fFlags},
		Txattrcreate + 1: {},
		Treaddir:         {fFid, fOffset, fCount},
		Treaddir + 1:     {fData},
		Tfsync:           {fFid, fDatasync},
		Tfsync + 1:       {},
		Tlock:            {fFid, fLock},
		Tlock + 1:        {fStatus},
		Tgetlock:         {fFid, fGetlock},
		Tgetlock + 1:     {fRgetlock},
		Tlink:            {fDfid, fFid, fName},
		Tlink + 1:        {},
		Tmkdir:           {fDfid, fName, fMode, fGid},
		Tmkdir + 1:       {fQid},
		Trenameat:        {fFid, fName, fDfid, fNewName},
		Trenameat + 1:    {},
		Tunlinkat:        {fFid, fName, fFlags},
		Tunlinkat + 1:    {},
	}
)

// layout returns the fields of message type t in dialect d. Before a
// dialect is chosen only Tversion and its reply and Rerror are known.
func layout(d Dialect, t uint8) ([]field, bool) {
	switch d {
	case NoDialect:
		if t == Rerror {
			return plan9Only[t], true
		}
		if t != Tversion && t != Tversion+1 {
			return nil, false
		}
	case Plan9:
		if l, ok := plan9Only[t]; ok {
			return l, true
		}
	case Linux:
		if l, ok := linuxOnly[t]; ok {
			return l, true
		}
	}
	l, ok := common[t]
	return l, ok
}

var typeNames = map[uint8]string{
	Rlerror: "Rlerror", Tstatfs: "Tstatfs", Tlopen: "Tlopen", Tlcreate: "Tlcreate",
	Tsymlink: "Tsymlink", Tmknod: "Tmknod", Trename: "Trename", Treadlink: "Treadlink",
	Tgetattr: "Tgetattr", Tsetattr: "Tsetattr", Txattrwalk: "Txattrwalk",
	Txattrcreate: "Txattrcreate", Treaddir: "Treaddir", Tfsync: "Tfsync", Tlock: "Tlock",
	Tgetlock: "Tgetlock", Tlink: "Tlink", Tmkdir: "Tmkdir", Trenameat: "Trenameat",
	Tunlinkat: "Tunlinkat", Tversion: "Tversion", Tauth: "Tauth", Tattach: "Tattach",
	Rerror: "Rerror", Tflush: "Tflush", Twalk: "Twalk", Topen: "Topen", Tcreate: "Tcreate",
	Tread: "Tread", Twrite: "Twrite", Tclunk: "Tclunk", Tremove: "Tremove", Tstat: "Tstat",
	Twstat: "Twstat",
}

// TypeName names a message type ("Twalk", "Rwalk"; a number if unknown).
func TypeName(t uint8) string {
	if n, ok := typeNames[t]; ok {
		return n
	}
	if n, ok := typeNames[t-1]; ok && n[0] == 'T' {
		return "R" + n[1:]
	}
	return fmt.Sprintf("type%d", t)
}

// errMalformed is the error of a message whose body does not parse, and
// errUnknownType that of a type the dialect lacks.
var (
	errMalformed   = errors.New("malformed message")
	errUnknownType = errors.New("unknown message type")
	errTooMany     = fmt.Errorf("more than %d names", MaxWelem)
)

// decoder reads a message body; the first short read sets err and every
// later read returns zero values.
type decoder struct {
	b   []byte
	err error
}

// fail records the first error.
func (d *decoder) fail(err error) {
	if d.err == nil {
		d.err = err
	}
}

func (d *decoder) take(n int) []byte {
	if d.err != nil || n < 0 || len(d.b) < n {
		d.fail(errMalformed)
		return nil
	}
	p := d.b[:n]
	d.b = d.b[n:]
	return p
}

func (d *decoder) u8() uint8 {
	if p := d.take(1); p != nil {
		return p[0]
	}
	return 0
}

func (d *decoder) u16() uint16 {
	if p := d.take(2); p != nil {
		return binary.LittleEndian.Uint16(p)
	}
	return 0
}

func (d *decoder) u32() uint32 {
	if p := d.take(4); p != nil {
		return binary.LittleEndian.Uint32(p)
	}
	return 0
}

func (d *decoder) u64() uint64 {
	if p := d.take(8); p != nil {
		return binary.LittleEndian.Uint64(p)
	}
	return 0
}

// count reads the length of a walk's list: at most MaxWelem.
func (d *decoder) count() int {
	n := int(d.u16())
	if n > MaxWelem {
		d.fail(errTooMany)
		return 0
	}
	return n
}

func (d *decoder) str() string { return string(d.take(int(d.u16()))) }

func (d *decoder) qid() Qid {
	return Qid{Type: d.u8(), Vers: d.u32(), Path: d.u64()}
}

func (d *decoder) time() Timespec { return Timespec{Sec: d.u64(), Nsec: d.u64()} }

// Unmarshal decodes one whole message (with its size field) of dialect d.
// On error the returned message still carries the type and tag when the
// header was readable, so the error can be answered.
func Unmarshal(d Dialect, b []byte) (*Msg, error) {
	m := &Msg{}
	if len(b) < headerSz {
		return nil, errMalformed
	}
	if int(binary.LittleEndian.Uint32(b)) != len(b) {
		return nil, errMalformed
	}
	m.Type, m.Tag = b[4], binary.LittleEndian.Uint16(b[5:])
	l, ok := layout(d, m.Type)
	if !ok {
		return m, fmt.Errorf("%w %d in %v", errUnknownType, m.Type, d)
	}
	dec := &decoder{b: b[headerSz:]}
	for _, f := range l {
		m.get(dec, f)
	}
	if dec.err != nil {
		return m, fmt.Errorf("%v: %w", TypeName(m.Type), dec.err)
	}
	if len(dec.b) != 0 {
		return m, fmt.Errorf("%v: %d bytes after the message", TypeName(m.Type), len(dec.b))
	}
	return m, nil
}

func (m *Msg) get(d *decoder, f field) {
	switch f {
	case fFid:
		m.Fid = d.u32()
	case fAfid:
		m.Afid = d.u32()
	case fNewfid:
		m.Newfid = d.u32()
	case fDfid:
		m.Dfid = d.u32()
	case fMsize:
		m.Msize = d.u32()
	case fVersion:
		m.Version = d.str()
	case fUname:
		m.Uname = d.str()
	case fAname:
		m.Aname = d.str()
	case fNUname:
		m.NUname = d.u32()
	case fOldtag:
		m.Oldtag = d.u16()
	case fNames:
		n := d.count()
		m.Names = make([]string, 0, n)
		for i := 0; i < n && d.err == nil; i++ {
			m.Names = append(m.Names, d.str())
		}
	case fQids:
		n := d.count()
		m.Qids = make([]Qid, 0, n)
		for i := 0; i < n && d.err == nil; i++ {
			m.Qids = append(m.Qids, d.qid())
		}
	case fQid:
		m.Qid = d.qid()
	case fIounit:
		m.Iounit = d.u32()
	case fOMode:
		m.OMode = d.u8()
	case fPerm:
		m.Perm = d.u32()
	case fName:
		m.Name = d.str()
	case fNewName:
		m.NewName = d.str()
	case fTarget:
		m.Target = d.str()
	case fOffset:
		m.Offset = d.u64()
	case fCount:
		m.Count = d.u32()
	case fData:
		n := d.u32()
		if uint64(n) > uint64(len(d.b)) {
			d.fail(errMalformed)
			return
		}
		m.Data = d.take(int(n))
		m.Count = n
	case fStat:
		m.Stat = d.take(int(d.u16()))
	case fEname:
		m.Ename = d.str()
	case fEcode:
		m.Ecode = d.u32()
	case fFlags:
		m.Flags = d.u32()
	case fMode:
		m.Mode = d.u32()
	case fGid:
		m.Gid = d.u32()
	case fMajor:
		m.Major = d.u32()
	case fMinor:
		m.Minor = d.u32()
	case fMask:
		m.Mask = d.u64()
	case fGetattr:
		a := &m.Attr
		a.Valid, a.Qid, a.Mode, a.UID, a.GID = d.u64(), d.qid(), d.u32(), d.u32(), d.u32()
		a.Nlink, a.Rdev, a.Size, a.Blksize, a.Blocks = d.u64(), d.u64(), d.u64(), d.u64(), d.u64()
		a.Atime, a.Mtime, a.Ctime, a.Btime = d.time(), d.time(), d.time(), d.time()
		a.Gen, a.DataVersion = d.u64(), d.u64()
	case fSetattr:
		a := &m.Attr
		a.Valid = uint64(d.u32())
		a.Mode, a.UID, a.GID, a.Size = d.u32(), d.u32(), d.u32(), d.u64()
		a.Atime, a.Mtime = d.time(), d.time()
	case fStatfs:
		s := &m.Statfs
		s.Type, s.Bsize = d.u32(), d.u32()
		s.Blocks, s.Bfree, s.Bavail, s.Files, s.Ffree, s.Fsid = d.u64(), d.u64(), d.u64(), d.u64(), d.u64(), d.u64()
		s.Namelen = d.u32()
	case fLock:
		l := &m.Lock
		l.Type, l.Flags, l.Start, l.Length, l.ProcID, l.ClientID = d.u8(), d.u32(), d.u64(), d.u64(), d.u32(), d.str()
	case fGetlock, fRgetlock:
		l := &m.Lock
		l.Type, l.Start, l.Length, l.ProcID, l.ClientID = d.u8(), d.u64(), d.u64(), d.u32(), d.str()
	case fStatus:
		m.Status = d.u8()
	case fSize:
		m.Size = d.u64()
	case fDatasync:
		m.Datasync = d.u32()
	}
}

// encoder appends a message body.
type encoder struct{ b []byte }

func (e *encoder) u8(v uint8)   { e.b = append(e.b, v) }
func (e *encoder) u16(v uint16) { e.b = binary.LittleEndian.AppendUint16(e.b, v) }
func (e *encoder) u32(v uint32) { e.b = binary.LittleEndian.AppendUint32(e.b, v) }
func (e *encoder) u64(v uint64) { e.b = binary.LittleEndian.AppendUint64(e.b, v) }
func (e *encoder) str(s string) {
	e.u16(uint16(len(s)))
	e.b = append(e.b, s...)
}
func (e *encoder) qid(q Qid) {
	e.u8(q.Type)
	e.u32(q.Vers)
	e.u64(q.Path)
}
func (e *encoder) time(t Timespec) {
	e.u64(t.Sec)
	e.u64(t.Nsec)
}

// Marshal appends the encoding of m in dialect d to buf. It fails only
// for a type the dialect lacks or a string or list too long for its
// length field.
func (m *Msg) Marshal(d Dialect, buf []byte) ([]byte, error) {
	l, ok := layout(d, m.Type)
	if !ok {
		return buf, fmt.Errorf("unknown message type %d in %v", m.Type, d)
	}
	if len(m.Names) > MaxWelem || len(m.Qids) > MaxWelem {
		return buf, fmt.Errorf("%v: more than %d names", TypeName(m.Type), MaxWelem)
	}
	start := len(buf)
	e := &encoder{b: buf}
	e.u32(0)
	e.u8(m.Type)
	e.u16(m.Tag)
	for _, f := range l {
		if err := m.put(e, f); err != nil {
			return buf, fmt.Errorf("%v: %w", TypeName(m.Type), err)
		}
	}
	if uint64(len(e.b)-start) > 1<<32-1 {
		return buf, fmt.Errorf("%v: too long", TypeName(m.Type))
	}
	binary.LittleEndian.PutUint32(e.b[start:], uint32(len(e.b)-start))
	return e.b, nil
}

var errTooLong = errors.New("string too long")

func (m *Msg) put(e *encoder, f field) error {
	for _, s := range m.strings(f) {
		if len(s) > 0xFFFF {
			return errTooLong
		}
	}
	switch f {
	case fFid:
		e.u32(m.Fid)
	case fAfid:
		e.u32(m.Afid)
	case fNewfid:
		e.u32(m.Newfid)
	case fDfid:
		e.u32(m.Dfid)
	case fMsize:
		e.u32(m.Msize)
	case fVersion:
		e.str(m.Version)
	case fUname:
		e.str(m.Uname)
	case fAname:
		e.str(m.Aname)
	case fNUname:
		e.u32(m.NUname)
	case fOldtag:
		e.u16(m.Oldtag)
	case fNames:
		e.u16(uint16(len(m.Names)))
		for _, n := range m.Names {
			e.str(n)
		}
	case fQids:
		e.u16(uint16(len(m.Qids)))
		for _, q := range m.Qids {
			e.qid(q)
		}
	case fQid:
		e.qid(m.Qid)
	case fIounit:
		e.u32(m.Iounit)
	case fOMode:
		e.u8(m.OMode)
	case fPerm:
		e.u32(m.Perm)
	case fName:
		e.str(m.Name)
	case fNewName:
		e.str(m.NewName)
	case fTarget:
		e.str(m.Target)
	case fOffset:
		e.u64(m.Offset)
	case fCount:
		e.u32(m.Count)
	case fData:
		e.u32(uint32(len(m.Data)))
		e.b = append(e.b, m.Data...)
	case fStat:
		if len(m.Stat) > 0xFFFF {
			return errTooLong
		}
		e.u16(uint16(len(m.Stat)))
		e.b = append(e.b, m.Stat...)
	case fEname:
		e.str(m.Ename)
	case fEcode:
		e.u32(m.Ecode)
	case fFlags:
		e.u32(m.Flags)
	case fMode:
		e.u32(m.Mode)
	case fGid:
		e.u32(m.Gid)
	case fMajor:
		e.u32(m.Major)
	case fMinor:
		e.u32(m.Minor)
	case fMask:
		e.u64(m.Mask)
	case fGetattr:
		a := &m.Attr
		e.u64(a.Valid)
		e.qid(a.Qid)
		e.u32(a.Mode)
		e.u32(a.UID)
		e.u32(a.GID)
		for _, v := range []uint64{a.Nlink, a.Rdev, a.Size, a.Blksize, a.Blocks} {
			e.u64(v)
		}
		for _, t := range []Timespec{a.Atime, a.Mtime, a.Ctime, a.Btime} {
			e.time(t)
		}
		e.u64(a.Gen)
		e.u64(a.DataVersion)
	case fSetattr:
		a := &m.Attr
		e.u32(uint32(a.Valid))
		e.u32(a.Mode)
		e.u32(a.UID)
		e.u32(a.GID)
		e.u64(a.Size)
		e.time(a.Atime)
		e.time(a.Mtime)
	case fStatfs:
		s := &m.Statfs
		e.u32(s.Type)
		e.u32(s.Bsize)
		for _, v := range []uint64{s.Blocks, s.Bfree, s.Bavail, s.Files, s.Ffree, s.Fsid} {
			e.u64(v)
		}
		e.u32(s.Namelen)
	case fLock:
		l := &m.Lock
		e.u8(l.Type)
		e.u32(l.Flags)
		e.u64(l.Start)
		e.u64(l.Length)
		e.u32(l.ProcID)
		e.str(l.ClientID)
	case fGetlock, fRgetlock:
		l := &m.Lock
		e.u8(l.Type)
		e.u64(l.Start)
		e.u64(l.Length)
		e.u32(l.ProcID)
		e.str(l.ClientID)
	case fStatus:
		e.u8(m.Status)
	case fSize:
		e.u64(m.Size)
	case fDatasync:
		e.u32(m.Datasync)
	}
	return nil
}

// strings lists the strings field f encodes, to check their lengths.
func (m *Msg) strings(f field) []string {
	switch f {
	case fVersion:
		return []string{m.Version}
	case fUname:
		return []string{m.Uname}
	case fAname:
		return []string{m.Aname}
	case fNames:
		return m.Names
	case fName:
		return []string{m.Name}
	case fNewName:
		return []string{m.NewName}
	case fTarget:
		return []string{m.Target}
	case fEname:
		return []string{m.Ename}
	case fLock, fGetlock, fRgetlock:
		return []string{m.Lock.ClientID}
	}
	return nil
}

// String is a one-line description of m for traces and test failures.
func (m *Msg) String() string {
	s := fmt.Sprintf("%s tag %d", TypeName(m.Type), m.Tag)
	add := func(format string, args ...any) { s += " " + fmt.Sprintf(format, args...) }
	l, _ := layout(Linux, m.Type)
	if l == nil {
		l, _ = layout(Plan9, m.Type)
	}
	for _, f := range l {
		switch f {
		case fFid:
			add("fid %d", m.Fid)
		case fNewfid:
			add("newfid %d", m.Newfid)
		case fDfid:
			add("dfid %d", m.Dfid)
		case fMsize:
			add("msize %d", m.Msize)
		case fVersion:
			add("version %q", m.Version)
		case fNames:
			add("names %q", m.Names)
		case fName:
			add("name %q", m.Name)
		case fOffset:
			add("offset %d", m.Offset)
		case fCount:
			add("count %d", m.Count)
		case fData:
			add("data %d bytes", len(m.Data))
		case fEname:
			add("ename %q", m.Ename)
		case fEcode:
			add("ecode %d (%v)", m.Ecode, syscall.Errno(m.Ecode))
		case fQid:
			add("qid %v", m.Qid)
		case fQids:
			add("qids %v", m.Qids)
		case fIounit:
			add("iounit %d", m.Iounit)
		case fOMode:
			add("mode %#x", m.OMode)
		case fPerm:
			add("perm %#o", m.Perm)
		case fFlags:
			add("flags %#x", m.Flags)
		case fMode:
			add("mode %#o", m.Mode)
		case fTarget:
			add("target %q", m.Target)
		case fNewName:
			add("newname %q", m.NewName)
		case fSize:
			add("size %d", m.Size)
		case fMask:
			add("mask %#x", m.Mask)
		case fStat:
			add("stat %d bytes", len(m.Stat))
		case fGetattr, fSetattr:
			a := &m.Attr
			add("valid %#x mode %#o uid %d gid %d size %d", a.Valid, a.Mode, a.UID, a.GID, a.Size)
		case fUname:
			add("uname %q", m.Uname)
		case fAname:
			add("aname %q", m.Aname)
		case fNUname:
			add("n_uname %d", m.NUname)
		case fAfid:
			add("afid %d", int32(m.Afid))
		case fOldtag:
			add("oldtag %d", m.Oldtag)
		}
	}
	return s
}

func (q Qid) String() string { return fmt.Sprintf("(%#x %d %#x)", q.Path, q.Vers, q.Type) }
