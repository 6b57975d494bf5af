package store

import (
	"encoding/json"
	"fmt"

	"go.etcd.io/bbolt"
)

// readRecord reads key's JSON value in bucket (which older files may not
// have) into a T, if there is one.
func readRecord[T any](s *Store, bucket []byte, key string) (T, bool, error) {
	var v T
	var ok bool
	err := s.view(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucket)
		if b == nil {
			return nil
		}
		raw := b.Get([]byte(key))
		if raw == nil {
			return nil
		}
		if err := json.Unmarshal(raw, &v); err != nil {
			return fmt.Errorf("%s: %w", key, err)
		}
		ok = true
		return nil
	})
	return v, ok, err
}

// writeRecord writes v as key's JSON value in bucket, created on first use.
func writeRecord(s *Store, bucket []byte, key string, v any) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return s.update(func(tx *bbolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucket)
		if err != nil {
			return err
		}
		return b.Put([]byte(key), raw)
	})
}
