package bolt

import (
	"context"
	"fmt"
	"io"
	"strings"
)

// walker follows every page reachable from the root with plain reads,
// checking that each stays inside the file and is reached once.
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
