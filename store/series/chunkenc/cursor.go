package chunkenc

// Cursor walks the points of a chunk in order, without calling back for
// every poll as Expand does: a reader of many series at once moves each
// series' cursor only when its next point is due.
type Cursor struct {
	r chunkReader
}

// NewCursor returns a cursor at the start of chunk.
func NewCursor(chunk []byte) Cursor { return Cursor{r: chunkReader{b: chunk}} }

// Next moves to the next point; it returns false past the last.
func (c *Cursor) Next() (bool, error) {
	more, err := c.r.next()
	if err != nil || !more {
		return false, err
	}
	if c.r.idx > 1<<32-1 {
		return false, ErrCorrupt
	}
	return true, nil
}

// Idx, Present and Vals describe the point Next moved to: from account
// poll Idx on, the series is absent, or present with the values.
func (c *Cursor) Idx() uint32   { return uint32(c.r.idx) }
func (c *Cursor) Present() bool { return c.r.present }
func (c *Cursor) Vals() *Vals   { return &c.r.v }
