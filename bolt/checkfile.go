package bolt

import (
	"context"
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"io"
)

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

// metasValid reports whether both meta pages of the file are valid now.
func metasValid(r io.ReaderAt, pageSize int64) bool {
	return readMeta(r, 0, 0).valid() && readMeta(r, 1, pageSize).valid()
}
