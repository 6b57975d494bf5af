package series

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"sync"

	"github.com/klauspost/compress/zstd"
	"go.etcd.io/bbolt"

	"github.com/quotawatch/quotawatch/store/series/chunkenc"
)

// A sealed block keeps its chunks in packs: the chunks of up to packSeries
// series of consecutive ids in one value, keyed by (block, first id) and
// compressed together. One value per series cost a restart, a key and a
// bbolt element header per (series, block), as much as the changes
// themselves; compressed together, chunks also share what they repeat
// (masks, poll steps, common deltas). Once a week is complete, its day
// packs are rewritten as week packs (weekpack.go).
//
// A pack is packMarker, then a zstd frame of: per chunk, the id's distance
// from the previous id in the pack (the first from the key's), then the
// chunk's entry: the length of its points after its first, its shift byte,
// its first point's poll index and values (as a change from the previous
// chunk's first values), then those points. The marker cannot start a bare
// chunk (its first byte is a shift, at most 63), so blocks sealed one value
// per series still read.
const (
	packSeries = 512
	packMarker = 0xff
)

// codec holds an engine's zstd decoder, made once (it is safe for
// concurrent use), and its encoder while a write packs: the encoder's
// tables at the best compression are about 40 MB, which a daemon would
// otherwise hold all day for a fold a day.
type codec struct {
	once sync.Once
	dec  *zstd.Decoder
	err  error
	enc  *zstd.Encoder // only the writer uses it, one write at a time
}

// init makes the decoder.
func (c *codec) init() error {
	c.once.Do(func() { c.dec, c.err = zstd.NewReader(nil, zstd.WithDecoderConcurrency(1)) })
	return c.err
}

// encoder returns the encoder, made if the write has none yet.
func (c *codec) encoder() (*zstd.Encoder, error) {
	if c.enc == nil {
		enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedBestCompression), zstd.WithEncoderConcurrency(1),
			zstd.WithEncoderCRC(false), zstd.WithLowerEncoderMem(true))
		if err != nil {
			return nil, err
		}
		c.enc = enc
	}
	return c.enc, nil
}

// dropEncoder lets the encoder go at the end of a write.
func (c *codec) dropEncoder() {
	if c.enc != nil {
		_ = c.enc.Close()
		c.enc = nil
	}
}

// appendPackEntry appends a chunk (as chunkenc.Encode writes it) to raw as a
// pack entry. Its first point, which holds the values themselves, is
// stored as the change from *prev, the previous entry's first values:
// series of a pack often share limits, and a series' days its values, and
// then cost nothing to repeat. *prev becomes the chunk's first values.
func appendPackEntry(raw []byte, prev *chunkenc.Vals, chunk []byte) ([]byte, error) {
	idx, v, rest, err := splitChunk(chunk)
	if err != nil {
		return raw, err
	}
	raw = binary.AppendUvarint(raw, uint64(len(rest)))
	raw = append(raw, chunk[0])
	raw = binary.AppendUvarint(raw, idx)
	raw = chunkenc.AppendPoint(raw, *prev, v, false)
	raw = append(raw, rest...)
	*prev = v
	return raw, nil
}

// splitChunk returns a chunk's first point's poll index and values, and
// the points after it.
func splitChunk(chunk []byte) (idx uint64, v chunkenc.Vals, rest []byte, err error) {
	if len(chunk) < 2 {
		return 0, v, nil, errCorrupt
	}
	idx, n := binary.Uvarint(chunk[1:])
	if n <= 0 {
		return 0, v, nil, errCorrupt
	}
	m, absent, err := chunkenc.ReadPoint(chunk[1+n:], &v)
	if err != nil || absent {
		return 0, v, nil, errCorrupt // a chunk starts present
	}
	return idx, v, chunk[1+n+m:], nil
}

// packEntry is one chunk of a decompressed pack, as readPackEntry finds it.
type packEntry struct {
	shift byte
	idx   uint64
	first chunkenc.Vals
	rest  []byte // the points after the first, in the pack's buffer
}

// readPackEntry reads the pack entry at raw[p:] (after its id) whose previous
// entry's first values are prev, and returns where the next begins.
func readPackEntry(raw []byte, p int, prev chunkenc.Vals) (packEntry, int, error) {
	e := packEntry{first: prev}
	l, n := binary.Uvarint(raw[p:])
	if n <= 0 || p+n >= len(raw) {
		return e, 0, errCorrupt
	}
	p += n
	e.shift = raw[p]
	p++
	idx, n := binary.Uvarint(raw[p:])
	if n <= 0 {
		return e, 0, errCorrupt
	}
	e.idx = idx
	p += n
	m, absent, err := chunkenc.ReadPoint(raw[p:], &e.first)
	if err != nil || absent {
		return e, 0, errCorrupt
	}
	p += m
	if l > uint64(len(raw)-p) {
		return e, 0, errCorrupt
	}
	e.rest = raw[p : p+int(l)]
	return e, p + int(l), nil
}

// size is the length of the chunk appendChunk rebuilds, at most.
func (e *packEntry) size() int {
	return 1 + binary.MaxVarintLen64 + 1 + 6*binary.MaxVarintLen64 + len(e.rest)
}

// appendChunk appends the entry's chunk as chunkenc.Encode wrote it.
func (e *packEntry) appendChunk(dst []byte) []byte {
	dst = append(dst, e.shift)
	dst = binary.AppendUvarint(dst, e.idx)
	dst = chunkenc.AppendPoint(dst, chunkenc.Vals{}, e.first, false)
	return append(dst, e.rest...)
}

// packer collects the chunks of one pack.
type packer struct {
	first, last uint32
	n           int
	raw         []byte
	prevFirst   chunkenc.Vals // the previous chunk's first values
}

// add appends a chunk (as chunkenc.Encode writes it) to the pack.
func (p *packer) add(id uint32, chunk []byte) error {
	if p.n == 0 {
		p.first, p.last, p.prevFirst = id, id, chunkenc.Vals{}
	}
	mark := len(p.raw)
	p.raw = binary.AppendUvarint(p.raw, uint64(id-p.last))
	raw, err := appendPackEntry(p.raw, &p.prevFirst, chunk)
	if err != nil {
		p.raw = p.raw[:mark]
		return err
	}
	p.raw = raw
	p.last = id
	p.n++
	return nil
}

// put writes the pack, if it holds any chunk, and empties it.
func (p *packer) put(c *codec, b *bbolt.Bucket, block uint32) error {
	if p.n == 0 {
		return nil
	}
	enc, err := c.encoder()
	if err != nil {
		return err
	}
	v := enc.EncodeAll(p.raw, []byte{packMarker})
	if err := b.Put(blockKey(block, p.first), v); err != nil {
		return err
	}
	p.n, p.raw = 0, p.raw[:0]
	return nil
}

// sealedChunk returns the chunk of series id in sealed block b, or nil:
// from its week pack if its week has been rewritten as week packs, else
// from the block's day pack.
func (h *head) sealedChunk(bk *buckets, b, id uint32) ([]byte, error) {
	if chunk, found, err := h.weekChunk(bk, b, id); found || err != nil {
		return chunk, err
	}
	c := bk.chunks().Cursor()
	key := blockKey(b, id)
	k, v := c.Seek(key)
	if k != nil && bytes.Equal(k, key) && (len(v) == 0 || v[0] != packMarker) {
		return v, nil // a block sealed one value per series
	}
	if k == nil || !bytes.Equal(k, key) {
		if k == nil {
			k, v = c.Last()
		} else {
			k, v = c.Prev()
		}
	}
	if k == nil || len(k) != 8 || binary.BigEndian.Uint32(k[:4]) != b || len(v) == 0 || v[0] != packMarker {
		return nil, nil
	}
	if err := h.codec.init(); err != nil {
		return nil, err
	}
	// findInPack copies the chunk out: the buffer serves the next block.
	raw, err := h.codec.dec.DecodeAll(v[1:], bk.scratch[:0])
	bk.scratch = raw
	if err != nil {
		return nil, fmt.Errorf("%w: block %d pack %d: %v", errCorrupt, b, binary.BigEndian.Uint32(k[4:]), err)
	}
	chunk, err := findInPack(raw, binary.BigEndian.Uint32(k[4:]), id)
	if err != nil {
		return nil, fmt.Errorf("block %d pack %d: %w", b, binary.BigEndian.Uint32(k[4:]), err)
	}
	return chunk, nil
}

// findInPack returns the chunk of series id from a decompressed pack
// whose first id is first, or nil.
func findInPack(raw []byte, first, id uint32) ([]byte, error) {
	at := uint64(first)
	var e packEntry
	for p := 0; p < len(raw); {
		d, n := binary.Uvarint(raw[p:])
		if n <= 0 {
			return nil, errCorrupt
		}
		var err error
		if e, p, err = readPackEntry(raw, p+n, e.first); err != nil {
			return nil, err
		}
		at += d
		if at == uint64(id) {
			return e.appendChunk(make([]byte, 0, e.size())), nil
		}
		if at > uint64(id) {
			return nil, nil
		}
	}
	return nil, nil
}

// eachInPack calls fn with every chunk of a decompressed pack whose first
// id is first, each rebuilt as chunkenc.Encode wrote it (findInPack's
// format), in space of their own.
func eachInPack(raw []byte, first uint32, fn func(id uint32, chunk []byte) error) error {
	at := uint64(first)
	var e packEntry
	arena := make([]byte, 0, len(raw)+len(raw)/2)
	for p := 0; p < len(raw); {
		d, n := binary.Uvarint(raw[p:])
		if n <= 0 {
			return errCorrupt
		}
		var err error
		if e, p, err = readPackEntry(raw, p+n, e.first); err != nil {
			return err
		}
		at += d
		if at > 1<<32-1 {
			return errCorrupt
		}
		if cap(arena)-len(arena) < e.size() {
			arena = make([]byte, 0, max(len(raw), e.size()))
		}
		start := len(arena)
		arena = e.appendChunk(arena)
		if err := fn(uint32(at), arena[start:len(arena):len(arena)]); err != nil {
			return err
		}
	}
	return nil
}
