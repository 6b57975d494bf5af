package chunkenc

// Cursor walks the points of a chunk in order, without calling back for
// every poll as Expand does: a reader of many series at once moves each
// series' cursor only when its next point is due.
type Cursor struct {
	r chunkReader
}

// NewCursor returns a cursor at the start of chunk.
func NewCursor(chunk []byte) Cursor { return Cursor{r: chunkReader{b: chunk}} }

// Next returns the next point; ok is false past the last.
func (c *Cursor) Next() (p Point, ok bool, err error) {
	more, err := c.r.next()
	if err != nil || !more {
		return Point{}, false, err
	}
	if c.r.idx > 1<<32-1 {
		return Point{}, false, ErrCorrupt
	}
	return Point{Idx: uint32(c.r.idx), Present: c.r.present, V: c.r.v}, true, nil
}
