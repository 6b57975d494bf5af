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
// (masks, poll steps, common deltas).
//
// A pack is packMarker, then a zstd frame of: per chunk, the id's distance
// from the previous id in the pack (the first from the key's), the length
// of the chunk's points after its first, its shift byte, its first point's
// poll index and values (as a change from the previous chunk's first
// values), then those points. The marker cannot start a bare chunk (its first byte is a
// shift, at most 63), so blocks sealed one value per series still read.
const (
	packSeries = 512
	packMarker = 0xff
)

// codec holds one zstd encoder and decoder for an engine; both are safe
// for concurrent use, and costly to make.
type codec struct {
	once sync.Once
	enc  *zstd.Encoder
	dec  *zstd.Decoder
	err  error
}

func (c *codec) init() error {
	c.once.Do(func() {
		c.enc, c.err = zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedBestCompression), zstd.WithEncoderConcurrency(1),
			zstd.WithEncoderCRC(false), zstd.WithLowerEncoderMem(true))
		if c.err == nil {
			c.dec, c.err = zstd.NewReader(nil, zstd.WithDecoderConcurrency(1))
		}
	})
	return c.err
}

// packer collects the chunks of one pack.
type packer struct {
	first, last uint32
	n           int
	raw         []byte
	prevFirst   chunkenc.Vals // the previous chunk's first values
}

// add appends a chunk (as chunkenc.Encode writes it) to the pack. Its
// first point, which holds the values themselves, is stored as the change
// from the previous chunk's first point: series of a pack often share
// limits, and then cost nothing to repeat.
func (p *packer) add(id uint32, chunk []byte) error {
	if len(chunk) < 2 {
		return errCorrupt
	}
	idx, n := binary.Uvarint(chunk[1:])
	var v chunkenc.Vals
	if n <= 0 {
		return errCorrupt
	}
	m, absent, err := chunkenc.ReadPoint(chunk[1+n:], &v)
	if err != nil || absent {
		return errCorrupt // a chunk starts present
	}
	rest := chunk[1+n+m:]
	if p.n == 0 {
		p.first, p.last, p.prevFirst = id, id, chunkenc.Vals{}
	}
	p.raw = binary.AppendUvarint(p.raw, uint64(id-p.last))
	p.raw = binary.AppendUvarint(p.raw, uint64(len(rest)))
	p.raw = append(p.raw, chunk[0])
	p.raw = binary.AppendUvarint(p.raw, idx)
	p.raw = chunkenc.AppendPoint(p.raw, p.prevFirst, v, false)
	p.raw = append(p.raw, rest...)
	p.prevFirst = v
	p.last = id
	p.n++
	return nil
}

// put writes the pack, if it holds any chunk, and empties it.
func (p *packer) put(c *codec, b *bbolt.Bucket, block uint32) error {
	if p.n == 0 {
		return nil
	}
	if err := c.init(); err != nil {
		return err
	}
	v := c.enc.EncodeAll(p.raw, []byte{packMarker})
	if err := b.Put(blockKey(block, p.first), v); err != nil {
		return err
	}
	p.n, p.raw = 0, p.raw[:0]
	return nil
}

// sealedChunk returns the chunk of series id in sealed block b, or nil.
func (h *head) sealedChunk(bk *buckets, b, id uint32) ([]byte, error) {
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
	return findInPack(raw, binary.BigEndian.Uint32(k[4:]), id)
}

// findInPack returns the chunk of series id from a decompressed pack
// whose first id is first, or nil.
func findInPack(raw []byte, first, id uint32) ([]byte, error) {
	at := uint64(first)
	var firstVals chunkenc.Vals
	for p := 0; p < len(raw); {
		d, n := binary.Uvarint(raw[p:])
		if n <= 0 {
			return nil, errCorrupt
		}
		p += n
		l, n := binary.Uvarint(raw[p:])
		if n <= 0 || p+n >= len(raw) {
			return nil, errCorrupt
		}
		p += n
		shift := raw[p]
		p++
		idx, n := binary.Uvarint(raw[p:])
		if n <= 0 {
			return nil, errCorrupt
		}
		p += n
		m, absent, err := chunkenc.ReadPoint(raw[p:], &firstVals)
		if err != nil || absent {
			return nil, errCorrupt
		}
		p += m
		if l > uint64(len(raw)-p) {
			return nil, errCorrupt
		}
		at += d
		if at == uint64(id) {
			chunk := make([]byte, 0, 24+l)
			chunk = append(chunk, shift)
			chunk = binary.AppendUvarint(chunk, idx)
			chunk = chunkenc.AppendPoint(chunk, chunkenc.Vals{}, firstVals, false)
			return append(chunk, raw[p:p+int(l)]...), nil
		}
		if at > uint64(id) {
			return nil, nil
		}
		p += int(l)
	}
	return nil, nil
}
