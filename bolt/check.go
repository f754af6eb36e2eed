package bolt

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/fednode/fednode"
)

// Checking a store file without trusting it.
//
// bbolt reads its file through a memory map and follows the page ids and
// offsets it finds there. On a damaged file that means reading past the end
// of the file (SIGBUS), outside the map (SIGSEGV), or recursing forever
// through a cycle of pages; none of those can be recovered from in the
// goroutine that bbolt's own Tx.Check starts. So the file is first walked
// here with plain reads (ReadAt, which can only return an error): the meta
// pages, the file's length, the freelist and every page reachable from the
// root, checking that every id, offset and length stays inside its page and
// inside the file, and that no page is reached twice. Only a file that passes
// this walk is handed to bbolt, whose own check (key order, freed pages,
// unreachable pages) then cannot fault, and then every record is decoded.
//
// The layout constants below are bbolt's file format, version 2
// (go.etcd.io/bbolt/internal/common); they are fixed by the format, not by
// the bbolt release.
const (
	pageHeaderSize   = 16 // id u64, flags u16, count u16, overflow u32
	elementSize      = 16 // branch: pos u32, ksize u32, pgid u64; leaf: flags, pos, ksize, vsize u32
	bucketHeaderSize = 16 // root pgid u64, sequence u64
	metaSize         = 64 // magic, version, pageSize, flags u32; root bucket; freelist, pgid, txid, checksum u64
	metaSumLen       = 56 // the checksum covers the meta up to the checksum itself

	branchPage   = 0x01
	leafPage     = 0x02
	metaPage     = 0x04
	freelistPage = 0x10
	bucketLeaf   = 0x01

	boltMagic      = 0xED0CDAED
	boltVersion    = 2
	noFreelist     = ^uint64(0)
	maxTreeDepth   = 64  // a B+tree of 2^64 pages is far shallower; deeper means a cycle
	maxProblems    = 100 // a report lists this many problems, then counts the rest
	maxKeyInReport = 48
)

var le = binary.LittleEndian // bbolt writes native order; fednode runs on little-endian machines

// meta is one decoded meta page.
type meta struct {
	page     int // 0 or 1
	problem  string
	pageSize uint64
	root     uint64
	freelist uint64
	pgid     uint64 // high-water mark: pages [0, pgid) are in use or free
	txid     uint64
}

func (m meta) valid() bool { return m.problem == "" }

func readMeta(r io.ReaderAt, page int, off int64) meta {
	m := meta{page: page}
	buf := make([]byte, pageHeaderSize+metaSize)
	if n, err := r.ReadAt(buf, off); n < len(buf) {
		m.problem = fmt.Sprintf("meta page %d cannot be read: %v", page, err)
		return m
	}
	b := buf[pageHeaderSize:]
	h := fnv.New64a()
	h.Write(b[:metaSumLen])
	switch {
	case le.Uint32(b[0:]) != boltMagic:
		m.problem = fmt.Sprintf("meta page %d is damaged: it does not start with bbolt's magic number", page)
	case le.Uint32(b[4:]) != boltVersion:
		m.problem = fmt.Sprintf("meta page %d is damaged or of another bbolt format version (%d)", page, le.Uint32(b[4:]))
	case le.Uint64(b[metaSumLen:]) != h.Sum64():
		m.problem = fmt.Sprintf("meta page %d is damaged: its checksum does not match", page)
	}
	m.pageSize = uint64(le.Uint32(b[8:]))
	m.root = le.Uint64(b[16:])
	m.freelist = le.Uint64(b[32:])
	m.pgid = le.Uint64(b[40:])
	m.txid = le.Uint64(b[48:])
	if m.valid() && (m.pageSize < 512 || m.pageSize > 1<<16 || m.pageSize&(m.pageSize-1) != 0) {
		m.problem = fmt.Sprintf("meta page %d names an impossible page size %d", page, m.pageSize)
	}
	return m
}

// Report is what a check of the store file found.
type Report struct {
	Path     string
	Size     int64
	PageSize int
	Txid     uint64 // the transaction the store is at (the newest valid meta page)
	Pages    uint64 // the high-water mark: pages in use or free
	Reached  int    // pages reachable from the root
	Records  map[string]int
	Full     bool // every page and record was checked, not only the meta pages and the length
	Took     time.Duration

	// MetaProblems lists damage to one of the two meta pages. bbolt keeps
	// two so that it can fall back to the older one; the fallback loses the
	// transaction the damaged page recorded if that was the newer.
	MetaProblems []string
	// OtherTxid is the transaction the damaged meta page claims (not to be
	// trusted: the page is damaged).
	OtherTxid uint64
	// Problems lists every other kind of damage found.
	Problems []string
	more     int
}

func (r *Report) add(format string, args ...any) {
	if len(r.Problems) >= maxProblems {
		r.more++
		return
	}
	r.Problems = append(r.Problems, fmt.Sprintf(format, args...))
}

// Damaged reports whether the check found anything wrong.
func (r *Report) Damaged() bool { return len(r.Problems) > 0 || len(r.MetaProblems) > 0 }

// Err returns the report as a *DamageError, or nil when it found nothing.
func (r *Report) Err() error {
	if !r.Damaged() {
		return nil
	}
	e := &DamageError{Path: r.Path, Size: r.Size, Problems: append(append([]string(nil), r.MetaProblems...), r.Problems...), More: r.more}
	if len(r.Problems) == 0 {
		e.MetaOnly, e.Txid, e.LostTxid = true, r.Txid, r.OtherTxid > r.Txid
	}
	if r.Size == 0 {
		e.Empty = true
	}
	return e
}

// String is the report for an operator.
func (r *Report) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "store: %s (%s", r.Path, sizeString(r.Size))
	if r.PageSize > 0 {
		fmt.Fprintf(&b, ", page size %d, %d pages, transaction %d", r.PageSize, r.Pages, r.Txid)
	}
	b.WriteString(")\n")
	if len(r.MetaProblems) == 0 && r.PageSize > 0 {
		b.WriteString("meta pages: both valid\n")
	}
	for _, p := range r.MetaProblems {
		fmt.Fprintf(&b, "meta pages: %s\n", p)
	}
	if r.Full && r.Reached > 0 {
		fmt.Fprintf(&b, "pages: %d of %d reached from the meta pages, all within the file\n", r.Reached, r.Pages)
	}
	if len(r.Records) > 0 {
		names := make([]string, 0, len(r.Records))
		for _, name := range recordBuckets {
			if n, ok := r.Records[name]; ok {
				names = append(names, fmt.Sprintf("%d %s", n, name))
			}
		}
		fmt.Fprintf(&b, "records: %s\n", strings.Join(names, ", "))
	}
	for _, p := range r.Problems {
		fmt.Fprintf(&b, "problem: %s\n", p)
	}
	if r.more > 0 {
		fmt.Fprintf(&b, "problem: … and %d more\n", r.more)
	}
	switch {
	case r.Damaged():
		fmt.Fprintf(&b, "result: DAMAGED (checked in %v)\n", r.Took.Round(time.Millisecond))
	case r.Full && r.Records != nil:
		fmt.Fprintf(&b, "result: ok, every page and record checked (in %v)\n", r.Took.Round(time.Millisecond))
	case r.Full:
		fmt.Fprintf(&b, "result: ok, every page checked (in %v)\n", r.Took.Round(time.Millisecond))
	default:
		fmt.Fprintf(&b, "result: ok, meta pages and length only (in %v)\n", r.Took.Round(time.Millisecond))
	}
	return b.String()
}

func sizeString(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.2f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d bytes", n)
}

// DamageError is a store file that failed a check. The node refuses to open
// it: serving it would answer "not found" for data that exists, or crash.
type DamageError struct {
	Path     string
	Size     int64
	Problems []string
	More     int
	// Empty: the file has no bytes at all (lost, or its creation was cut
	// short).
	Empty bool
	// MetaOnly: the only damage is one of the two meta pages; the store is
	// consistent as of transaction Txid, and RepairMeta can make the file
	// whole again at that transaction. LostTxid: the damaged page claims a
	// newer transaction, whose writes the fallback loses.
	MetaOnly bool
	Txid     uint64
	LostTxid bool
}

// Error names the file and the first few problems: enough to act on, short
// enough for one log line. The check (Report) lists them all.
func (e *DamageError) Error() string {
	const shown = 3
	s := fmt.Sprintf("bolt: %s is damaged: %s", e.Path, strings.Join(e.Problems[:min(shown, len(e.Problems))], "; "))
	if more := e.More + max(0, len(e.Problems)-shown); more > 0 {
		s += fmt.Sprintf("; and %d more problems", more)
	}
	return s
}

// inspect checks the file r of size bytes without bbolt: the meta pages,
// the length and the freelist always; every reachable page when full.
func inspect(ctx context.Context, r io.ReaderAt, path string, size int64, full bool) *Report {
	rep := &Report{Path: path, Size: size, Full: full}
	if size == 0 {
		rep.add("the file is empty (0 bytes)")
		return rep
	}
	m0 := readMeta(r, 0, 0)
	ps := int64(4096)
	if m0.valid() {
		ps = int64(m0.pageSize)
	}
	m1 := readMeta(r, 1, ps)
	if !m0.valid() && !m1.valid() {
		// The page size of a file whose first meta page is gone: try the
		// others bbolt could have used.
		for try := int64(512); try <= 1<<16; try *= 2 {
			if m := readMeta(r, 1, try); m.valid() && int64(m.pageSize) == try {
				m1, ps = m, try
				break
			}
		}
	}
	cur, other := m0, m1
	switch {
	case !m0.valid() && !m1.valid():
		rep.add("both meta pages are unusable (%s; %s): this is not a bbolt file, or its first pages are destroyed", m0.problem, m1.problem)
		return rep
	case !m0.valid():
		cur, other = m1, m0
	case m1.valid() && m1.txid > m0.txid:
		cur, other = m1, m0
	}
	if other.valid() && other.pageSize != cur.pageSize {
		rep.add("the meta pages disagree about the page size (%d and %d)", m0.pageSize, m1.pageSize)
		return rep
	}
	if !other.valid() {
		rep.MetaProblems = append(rep.MetaProblems, fmt.Sprintf("%s; the other (page %d, transaction %d) is intact", other.problem, cur.page, cur.txid))
		rep.OtherTxid = other.txid
	}
	rep.PageSize, rep.Txid, rep.Pages = int(cur.pageSize), cur.txid, cur.pgid
	w := &walker{ctx: ctx, r: r, rep: rep, ps: int64(cur.pageSize), hwm: cur.pgid, seen: map[uint64]bool{0: true, 1: true}}
	if need := int64(cur.pgid) * w.ps; cur.pgid < 2 || need/w.ps != int64(cur.pgid) || need > size {
		rep.add("the file is truncated: it is %d bytes, but transaction %d uses %d pages of %d bytes (%d bytes)", size, cur.txid, cur.pgid, w.ps, need)
		return rep
	}
	if cur.root < 2 || cur.root >= cur.pgid {
		rep.add("the root bucket's page %d is outside the file's %d pages", cur.root, cur.pgid)
		return rep
	}
	w.freelist(cur.freelist)
	if !full {
		// The root page's header, so that opening cannot trip on it.
		if p, ok := w.readPage(cur.root, "the root bucket"); ok && p.flags != branchPage && p.flags != leafPage {
			rep.add("page %d (the root bucket) has type %#x, not a branch or leaf page", cur.root, p.flags)
		}
		return rep
	}
	w.bucket(cur.root, nil, "", 0)
	rep.Reached = len(w.seen)
	return rep // when ctx ended the walk early, the caller says so
}

type walker struct {
	ctx  context.Context
	r    io.ReaderAt
	rep  *Report
	ps   int64
	hwm  uint64
	seen map[uint64]bool
	n    int
}

type rawPage struct {
	id       uint64
	flags    uint16
	count    int
	overflow uint64
	buf      []byte // the whole page with its overflow
}

// readAt reads len(b) bytes at off. (A read-ahead window was tried: the
// pages of a tree are not in file order, and it made the walk slower.)
func (w *walker) readAt(b []byte, off int64) error {
	_, err := w.r.ReadAt(b, off)
	return err
}

// readPage reads page id with its overflow pages, checking only that it is
// the page it claims to be and that it lies inside the file.
func (w *walker) readPage(id uint64, where string) (rawPage, bool) {
	var hdr [pageHeaderSize]byte
	if err := w.readAt(hdr[:], int64(id)*w.ps); err != nil {
		w.rep.add("page %d (%s) cannot be read: %v", id, where, err)
		return rawPage{}, false
	}
	p := rawPage{id: le.Uint64(hdr[0:]), flags: le.Uint16(hdr[8:]), count: int(le.Uint16(hdr[10:])), overflow: uint64(le.Uint32(hdr[12:]))}
	if p.id != id {
		w.rep.add("page %d (%s) is damaged: its header names it page %d", id, where, p.id)
		return p, false
	}
	if id+p.overflow >= w.hwm {
		w.rep.add("page %d (%s) claims %d overflow pages, past the end of the store (%d pages)", id, where, p.overflow, w.hwm)
		return p, false
	}
	p.buf = make([]byte, (p.overflow+1)*uint64(w.ps))
	if err := w.readAt(p.buf, int64(id)*w.ps); err != nil {
		w.rep.add("page %d (%s) cannot be read: %v", id, where, err)
		return p, false
	}
	return p, true
}

// claim marks the pages of p as reached, reporting any reached before.
func (w *walker) claim(p rawPage, where string) bool {
	for i := uint64(0); i <= p.overflow; i++ {
		if w.seen[p.id+i] {
			w.rep.add("page %d (%s) is reached twice: the tree is damaged", p.id+i, where)
			return false
		}
	}
	for i := uint64(0); i <= p.overflow; i++ {
		w.seen[p.id+i] = true
	}
	return true
}

func (w *walker) freelist(id uint64) {
	if id == noFreelist {
		w.rep.add("the store has no freelist page; fednode always writes one")
		return
	}
	if id < 2 || id >= w.hwm {
		w.rep.add("the freelist page %d is outside the file's %d pages", id, w.hwm)
		return
	}
	p, ok := w.readPage(id, "the freelist")
	if !ok {
		return
	}
	if p.flags != freelistPage {
		w.rep.add("page %d (the freelist) has type %#x, not a freelist page", id, p.flags)
		return
	}
	w.claim(p, "the freelist")
	start, n := pageHeaderSize, uint64(p.count)
	if p.count == 0xFFFF {
		n, start = le.Uint64(p.buf[pageHeaderSize:]), pageHeaderSize+8
	}
	if n > uint64(len(p.buf)-start)/8 {
		w.rep.add("page %d (the freelist) lists %d free pages, more than it can hold", id, n)
		return
	}
	for i := uint64(0); i < n; i++ {
		if f := le.Uint64(p.buf[start+int(i)*8:]); f < 2 || f >= w.hwm {
			w.rep.add("the freelist lists page %d, outside the file's %d pages", f, w.hwm)
			return
		}
	}
}

// bucket walks the bucket whose root is page root, or the inline page
// when root is 0.
func (w *walker) bucket(root uint64, inline []byte, name string, depth int) {
	if inline != nil {
		if len(inline) < pageHeaderSize {
			w.rep.add("the inline bucket %s is shorter than a page header", bucketName(name))
			return
		}
		p := rawPage{flags: le.Uint16(inline[8:]), count: int(le.Uint16(inline[10:])), buf: inline}
		if p.flags != leafPage {
			w.rep.add("the inline bucket %s has page type %#x, not a leaf", bucketName(name), p.flags)
			return
		}
		w.elements(p, name, depth)
		return
	}
	w.tree(root, name, depth)
}

func (w *walker) tree(id uint64, name string, depth int) {
	where := "bucket " + bucketName(name)
	if w.n++; w.n%1024 == 0 && w.ctx.Err() != nil {
		return
	}
	if depth > maxTreeDepth {
		w.rep.add("page %d (%s) is %d levels deep: the tree has a cycle", id, where, depth)
		return
	}
	if id < 2 || id >= w.hwm {
		w.rep.add("%s points to page %d, outside the file's %d pages", where, id, w.hwm)
		return
	}
	p, ok := w.readPage(id, where)
	if !ok || !w.claim(p, where) {
		return
	}
	if p.flags != branchPage && p.flags != leafPage {
		w.rep.add("page %d (%s) has type %#x, not a branch or leaf page", id, where, p.flags)
		return
	}
	w.elements(p, name, depth)
}

// elements checks that every element of p lies inside p and follows its
// children.
func (w *walker) elements(p rawPage, name string, depth int) {
	where := fmt.Sprintf("page %d (bucket %s)", p.id, bucketName(name))
	if p.id == 0 {
		where = "the inline bucket " + bucketName(name)
	}
	end := uint64(len(p.buf))
	if uint64(pageHeaderSize+p.count*elementSize) > end {
		w.rep.add("%s claims %d elements, more than it can hold", where, p.count)
		return
	}
	for i := 0; i < p.count; i++ {
		off := uint64(pageHeaderSize + i*elementSize)
		e := p.buf[off:]
		if p.flags == branchPage {
			pos, ksize, child := uint64(le.Uint32(e[0:])), uint64(le.Uint32(e[4:])), le.Uint64(e[8:])
			if off+pos+ksize > end {
				w.rep.add("%s: element %d's key runs past the end of the page", where, i)
				return
			}
			w.tree(child, name, depth+1)
			continue
		}
		flags, pos, ksize, vsize := le.Uint32(e[0:]), uint64(le.Uint32(e[4:])), uint64(le.Uint32(e[8:])), uint64(le.Uint32(e[12:]))
		if off+pos+ksize+vsize > end {
			w.rep.add("%s: element %d's key or value runs past the end of the page", where, i)
			return
		}
		if flags&bucketLeaf == 0 {
			continue
		}
		key := p.buf[off+pos : off+pos+ksize]
		val := p.buf[off+pos+ksize : off+pos+ksize+vsize]
		child := strings.TrimPrefix(name+"/"+keyString(key), "/")
		if len(val) < bucketHeaderSize {
			w.rep.add("%s: the bucket %s has a header of %d bytes", where, bucketName(child), len(val))
			continue
		}
		if root := le.Uint64(val); root != 0 {
			w.bucket(root, nil, child, depth+1)
		} else {
			w.bucket(0, val[bucketHeaderSize:], child, depth+1)
		}
	}
}

func bucketName(name string) string {
	if name == "" {
		return "(root)"
	}
	return name
}

// keyString shows a key the way the operator would recognise it: as text
// when it is printable, else in hex.
func keyString(k []byte) string {
	s := string(k)
	printable := true
	for _, r := range s {
		if r < 0x20 || r == 0x7f || r == 0xfffd {
			printable = false
			break
		}
	}
	if !printable {
		s = fmt.Sprintf("%x", k)
	}
	if len(s) > maxKeyInReport {
		s = s[:maxKeyInReport] + "…"
	}
	return s
}

type kvStringer struct{}

func (kvStringer) KeyToString(k []byte) string   { return strconv.Quote(keyString(k)) }
func (kvStringer) ValueToString(v []byte) string { return strconv.Quote(keyString(v)) }

// recordBuckets are the top-level buckets, in the order a report lists them.
var recordBuckets = []string{"users", "sessions", "user_sessions", "messages", "mailboxes", "login_failures", "outbox", "dead_letters", "bans", "peer_documents", "meta"}

// recordScope is how many records a check decodes.
type recordScope int

const (
	noRecords    recordScope = iota
	smallRecords             // all but messages and mailboxes, which grow with every message
	allRecords
)

// checkTx runs bbolt's own consistency check on tx, then decodes the
// records in scope and checks the links between them. Decoding every
// record costs several times more than the rest (see
// DefaultFullCheckMaxBytes); messages and mailboxes are most of it, and a
// damaged one is still found when read (a mailbox entry whose message does
// not decode or is gone fails the store). Call it only on a file that
// inspect found sound (see the top of this file), and with no writer
// running: bbolt's check reads the freelist that writers change. When ctx
// ends it stops decoding; the caller must not take the report as whole.
func checkTx(ctx context.Context, tx *bbolt.Tx, rep *Report, scope recordScope) {
	for err := range tx.Check(bbolt.WithKVStringer(kvStringer{})) {
		rep.add("bbolt's check: %v", err)
	}
	if len(rep.Problems) > 0 || scope == noRecords {
		return // records on a damaged tree prove nothing more
	}
	rep.Records = map[string]int{}
	known := map[string]bool{}
	for _, n := range recordBuckets {
		known[n] = true
	}
	tx.ForEach(func(name []byte, _ *bbolt.Bucket) error {
		if !known[string(name)] {
			rep.add("an unknown top-level bucket %q: a damaged name, or a store of another program", keyString(name))
		}
		return nil
	})
	msgs := tx.Bucket(bMessages)
	hasMessage := func(id []byte) bool { return msgs != nil && msgs.Get(id) != nil }
	records(ctx, tx, rep, bUsers, func(k, v []byte) error {
		var u fednode.User
		if err := undecodable(v, &u); err != nil {
			return err
		}
		if fednode.CanonicalUsername(u.Username) != string(k) {
			return fmt.Errorf("holds user %q", u.Username)
		}
		return nil
	})
	records(ctx, tx, rep, bSessions, func(k, v []byte) error {
		var s fednode.Session
		if err := undecodable(v, &s); err != nil {
			return err
		}
		if s.ID != string(k) {
			return fmt.Errorf("holds session %q", s.ID)
		}
		return nil
	})
	nested(ctx, tx, rep, bUserSessions, func(_ *bbolt.Bucket, k, v []byte) error {
		if len(k) < 8 || len(v) != 0 {
			return errors.New("is not a session index entry")
		}
		return nil
	})
	if scope == allRecords {
		records(ctx, tx, rep, bMessages, func(k, v []byte) error {
			var m fednode.Message
			if err := undecodable(v, &m); err != nil {
				return err
			}
			if m.ID != string(k) {
				return fmt.Errorf("holds message %q", m.ID)
			}
			return nil
		})
		nested(ctx, tx, rep, bMailboxes, func(b *bbolt.Bucket, k, v []byte) error {
			if len(k) != 8 || binary.BigEndian.Uint64(k) > b.Sequence() {
				return fmt.Errorf("is not a cursor at or below the mailbox's sequence %d", b.Sequence())
			}
			if !hasMessage(v) {
				return fmt.Errorf("points to message %q, which is not stored", keyString(v))
			}
			return nil
		})
	}
	records(ctx, tx, rep, bFailures, func(_, v []byte) error { var ns []int64; return undecodable(v, &ns) })
	nested(ctx, tx, rep, bOutbox, func(b *bbolt.Bucket, k, v []byte) error {
		var j fednode.Job
		if err := undecodable(v, &j); err != nil {
			return err
		}
		if len(k) != 8 || binary.BigEndian.Uint64(k) != j.Seq || j.Seq > b.Sequence() {
			return fmt.Errorf("holds job %d (queue sequence %d)", j.Seq, b.Sequence())
		}
		if !hasMessage([]byte(j.MessageID)) {
			return fmt.Errorf("is the job of message %q, which is not stored", j.MessageID)
		}
		return nil
	})
	records(ctx, tx, rep, bDead, func(k, v []byte) error {
		var d fednode.DeadLetter
		if err := undecodable(v, &d); err != nil {
			return err
		}
		if d.MessageID != string(k) {
			return fmt.Errorf("holds the dead letter of %q", d.MessageID)
		}
		return nil
	})
	records(ctx, tx, rep, bBans, func(k, v []byte) error {
		var b fednode.Ban
		if err := undecodable(v, &b); err != nil {
			return err
		}
		if b.Key != string(k) {
			return fmt.Errorf("holds the ban of %q", b.Key)
		}
		return nil
	})
	records(ctx, tx, rep, bPeers, func(_, v []byte) error { var p peerDoc; return undecodable(v, &p) })
	records(ctx, tx, rep, bMeta, func(_, _ []byte) error { return nil })
}

// undecodable is json.Unmarshal worded for a report.
func undecodable(v []byte, x any) error {
	if err := json.Unmarshal(v, x); err != nil {
		return fmt.Errorf("does not decode: %v", err)
	}
	return nil
}

// records checks each key/value of a top-level bucket with fn.
func records(ctx context.Context, tx *bbolt.Tx, rep *Report, name []byte, fn func(k, v []byte) error) {
	b := tx.Bucket(name)
	if b == nil {
		return // created at the next open; a missing name is caught above
	}
	n := 0
	b.ForEach(func(k, v []byte) error {
		if n++; n%4096 == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
		if v == nil {
			rep.add("%s: %q is a bucket where a record belongs", name, keyString(k))
		} else if err := fn(k, v); err != nil {
			rep.add("%s: the record %q %v", name, keyString(k), err)
		}
		return nil
	})
	rep.Records[string(name)] = n
}

// nested checks the records of each bucket inside a top-level bucket.
func nested(ctx context.Context, tx *bbolt.Tx, rep *Report, name []byte, fn func(b *bbolt.Bucket, k, v []byte) error) {
	top := tx.Bucket(name)
	if top == nil {
		return
	}
	n := 0
	top.ForEach(func(k, v []byte) error {
		b := top.Bucket(k)
		if b == nil {
			rep.add("%s: %q is a record where a bucket belongs", name, keyString(k))
			return nil
		}
		return b.ForEach(func(k2, v2 []byte) error {
			if n++; n%4096 == 0 && ctx.Err() != nil {
				return ctx.Err()
			}
			if err := fn(b, k2, v2); err != nil {
				rep.add("%s/%s: the entry %s %v", name, keyString(k), keyString(k2), err)
			}
			return nil
		})
	})
	rep.Records[string(name)] = n
}

// Check checks the store file at path, which need not be in a data
// directory (a backup, say): everything inspect and checkTx do. It takes a
// shared lock, so it waits up to timeout for a running node to stop, and
// fails clearly if it does not. The report says what was found; the error
// is for a file that could not be checked at all.
func Check(ctx context.Context, path string, timeout time.Duration) (*Report, error) {
	return check(ctx, path, timeout, allRecords)
}

func check(ctx context.Context, path string, timeout time.Duration, scope recordScope) (*Report, error) {
	start := time.Now()
	f, _, err := openLocked(path, false, false, timeout)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("bolt: check %s: %w", path, err)
	}
	rep := inspect(ctx, f, path, st.Size(), true)
	if err := ctx.Err(); err != nil {
		f.Close()
		return nil, fmt.Errorf("bolt: check %s: interrupted: %w", path, err)
	}
	if len(rep.Problems) > 0 {
		f.Close()
		rep.Took = time.Since(start)
		return rep, nil
	}
	err = faultSafe(func() error {
		db, err := bbolt.Open(path, 0o600, &bbolt.Options{ReadOnly: true, Timeout: timeout, OpenFile: handOver(f)})
		if err != nil {
			f.Close()
			return err
		}
		defer db.Close()
		return db.View(func(tx *bbolt.Tx) error {
			checkTx(ctx, tx, rep, scope)
			return nil
		})
	})
	if err != nil {
		f.Close()
		rep.add("reading the store: %v", err)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("bolt: check %s: interrupted: %w", path, err)
	}
	rep.Took = time.Since(start)
	return rep, nil
}

// handOver gives bbolt the file already opened and locked, so no other
// process can slip in between the check and the open.
func handOver(f *os.File) func(string, int, os.FileMode) (*os.File, error) {
	return func(string, int, os.FileMode) (*os.File, error) { return f, nil }
}

// metasValid reports whether both meta pages of the file are valid now.
func metasValid(r io.ReaderAt, pageSize int64) bool {
	return readMeta(r, 0, 0).valid() && readMeta(r, 1, pageSize).valid()
}

// RepairMeta makes a store whose only damage is one of its two meta pages
// whole again, at the transaction the intact page records: it checks the
// whole file first and refuses if anything else is wrong, then commits an
// empty transaction, which bbolt writes over the damaged page. It is the
// operator's explicit acceptance that the damaged page's transaction, if it
// was the newer, is lost.
func RepairMeta(ctx context.Context, dir string, timeout time.Duration) (*Report, error) {
	path := filepath.Join(dir, fileName)
	f, _, err := openLocked(path, true, false, timeout)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("bolt: repair %s: %w", path, err)
	}
	start := time.Now()
	rep := inspect(ctx, f, path, st.Size(), true)
	defer func() { rep.Took = time.Since(start) }()
	if len(rep.Problems) > 0 {
		f.Close()
		return rep, nil
	}
	err = faultSafe(func() error {
		db, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: timeout, OpenFile: handOver(f)})
		if err != nil {
			return err
		}
		defer db.Close()
		db.View(func(tx *bbolt.Tx) error { checkTx(ctx, tx, rep, allRecords); return nil })
		if len(rep.Problems) > 0 || len(rep.MetaProblems) == 0 {
			return nil
		}
		return db.Update(func(*bbolt.Tx) error { return nil })
	})
	if err != nil {
		f.Close()
		return rep, fmt.Errorf("bolt: repair %s: %w", path, err)
	}
	if len(rep.Problems) > 0 {
		return rep, nil
	}
	g, err := os.Open(path)
	if err != nil {
		return rep, fmt.Errorf("bolt: repair %s: %w", path, err)
	}
	defer g.Close()
	if !metasValid(g, int64(rep.PageSize)) {
		return rep, fmt.Errorf("bolt: repair %s: a meta page is still damaged after the repair", path)
	}
	rep.MetaProblems = nil
	return rep, nil
}
