package ha

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"strconv"
	"strings"

	"github.com/klauspost/compress/zstd"
)

// The shared state sits in etcd as a few packed values per bucket, not a
// key per entry: one write step then stays within etcd's default limits
// (128 operations and 1.5 MiB a transaction) at thousands of rule
// instances, and the keyspace stays a fixed, small set of keys.
var shardCount = map[string]int{
	"rule_instances": 32,
	"rule_accounts":  2,
	"actions":        16,
	"outbox":         16,
	"threads":        8,
	"silences":       2,
}

// shardOf is the shard of key among n.
func shardOf(key []byte, n int) int {
	h := fnv.New32a()
	_, _ = h.Write(key)
	return int(h.Sum32() % uint32(n))
}

// Keys under the prefix.
const (
	keyLeader     = "leader"      // the election's keys: leader/<lease>
	keyLastLeader = "last-leader" // the member that last took the lead
	keyState      = "state/"      // state/<bucket>/<shard>, state/seq
	keySeq        = "state/seq"
)

func stateKey(prefix, bucket string, shard int) string {
	return fmt.Sprintf("%s%s%s/%02x", prefix, keyState, bucket, shard)
}

// parseStateKey splits prefix+"state/<bucket>/<shard>" and reports whether
// it is one.
func parseStateKey(prefix, key string) (bucket string, shard int, ok bool) {
	rest, found := strings.CutPrefix(key, prefix+keyState)
	if !found {
		return "", 0, false
	}
	b, s, found := strings.Cut(rest, "/")
	n, known := shardCount[b]
	if !found || !known {
		return "", 0, false
	}
	i, err := strconv.ParseUint(s, 16, 8)
	if err != nil || int(i) >= n {
		return "", 0, false
	}
	return b, int(i), true
}

// A packed shard is a version byte, then zstd of (uvarint key length, key,
// uvarint value length, value) per entry, in key order.
const packVersion = 1

// maxShard bounds a decoded shard: what etcd hands back is checked like
// any other input.
const maxShard = 64 << 20

type packer struct {
	enc *zstd.Encoder
	dec *zstd.Decoder
}

func newPacker() (*packer, error) {
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedDefault), zstd.WithEncoderConcurrency(1))
	if err != nil {
		return nil, err
	}
	dec, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(maxShard))
	if err != nil {
		return nil, err
	}
	return &packer{enc: enc, dec: dec}, nil
}

func (p *packer) pack(entries map[string][]byte) []byte {
	keys := make([]string, 0, len(entries))
	for k := range entries {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var raw []byte
	for _, k := range keys {
		raw = binary.AppendUvarint(raw, uint64(len(k)))
		raw = append(raw, k...)
		v := entries[k]
		raw = binary.AppendUvarint(raw, uint64(len(v)))
		raw = append(raw, v...)
	}
	return p.enc.EncodeAll(raw, []byte{packVersion})
}

var errShard = errors.New("malformed shard")

func (p *packer) unpack(v []byte) (map[string][]byte, error) {
	out := map[string][]byte{}
	if len(v) == 0 {
		return out, nil
	}
	if v[0] != packVersion {
		return nil, fmt.Errorf("%w: version %d", errShard, v[0])
	}
	raw, err := p.dec.DecodeAll(v[1:], nil)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errShard, err)
	}
	for len(raw) > 0 {
		k, rest, err := field(raw)
		if err != nil {
			return nil, err
		}
		val, rest, err := field(rest)
		if err != nil {
			return nil, err
		}
		if _, dup := out[string(k)]; dup {
			return nil, fmt.Errorf("%w: key %q twice", errShard, k)
		}
		out[string(k)] = val
		raw = rest
	}
	return out, nil
}

func field(b []byte) ([]byte, []byte, error) {
	n, w := binary.Uvarint(b)
	if w <= 0 || n > uint64(len(b)-w) {
		return nil, nil, fmt.Errorf("%w: bad length", errShard)
	}
	return b[w : w+int(n)], b[w+int(n):], nil
}
