package store

import (
	"fmt"
	"time"

	"go.etcd.io/bbolt"

	"github.com/quotawatch/quotawatch/store/series"
)

// Block is every series' history over one day block (see series.Block).
type Block = series.Block

// Change is a series that changed at a poll of a Block.
type Change = series.Change

// Block reads the day block holding t, in one read transaction: a reader
// of every series in time order reads each block once.
func (s *Store) Block(t time.Time) (*Block, error) {
	var out *Block
	err := s.viewHistory(func(tx *bbolt.Tx, e *series.Engine) error {
		var err error
		out, err = e.ReadBlock(tx, t)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("store: history block of %s: %w", t.UTC().Format(time.DateOnly), err)
	}
	return out, nil
}
