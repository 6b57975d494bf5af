package store

import (
	"context"
	"fmt"
	"time"

	"go.etcd.io/bbolt"

	"github.com/quotawatch/quotawatch/quota"
	"github.com/quotawatch/quotawatch/store/series"
)

// Latest is the newest observation of one series.
type Latest = series.Latest

// At returns the series' values at the latest poll at or before t where
// the series was present. Times are kept to the millisecond.
func (s *Store) At(k quota.Key, t time.Time) (quota.Sample, bool, error) {
	var out quota.Sample
	var ok bool
	err := s.viewSeries(k, func(tx *bbolt.Tx, e *series.Engine) error {
		var err error
		out, ok, err = e.At(tx, k, t)
		return err
	})
	if err != nil {
		return quota.Sample{}, false, fmt.Errorf("store: at %s: %w", k, err)
	}
	return out, ok, nil
}

// Series returns one sample per poll of the series' account in [from,to]
// where the series was present, as observed.
func (s *Store) Series(k quota.Key, from, to time.Time) ([]quota.Sample, error) {
	var out []quota.Sample
	err := s.viewSeries(k, func(tx *bbolt.Tx, e *series.Engine) error {
		var err error
		out, err = e.Series(tx, k, from, to)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("store: series %s: %w", k, err)
	}
	return out, nil
}

// Changes returns the value in force at from (as At(from) reports it, with
// its own observation time), then every poll in (from,to] whose values
// differ from the previous sample returned. A series reappearing with
// unchanged values is not a change.
func (s *Store) Changes(k quota.Key, from, to time.Time) ([]quota.Sample, error) {
	var out []quota.Sample
	err := s.viewSeries(k, func(tx *bbolt.Tx, e *series.Engine) error {
		var err error
		out, err = e.Changes(tx, k, from, to)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("store: changes %s: %w", k, err)
	}
	return out, nil
}

// Downsample returns up to n samples at evenly spaced times from..to (both
// included; n == 1 gives to), each carrying the values At would report
// for that time. Times before the first observation are left out.
func (s *Store) Downsample(k quota.Key, from, to time.Time, n int) ([]quota.Sample, error) {
	var out []quota.Sample
	err := s.viewSeries(k, func(tx *bbolt.Tx, e *series.Engine) error {
		var err error
		out, err = e.Downsample(tx, k, from, to, n)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("store: downsample %s: %w", k, err)
	}
	return out, nil
}

// LastSeen returns the time of the last poll where the series was present.
func (s *Store) LastSeen(k quota.Key) (time.Time, bool, error) {
	var t time.Time
	var ok bool
	err := s.viewSeries(k, func(_ *bbolt.Tx, e *series.Engine) error {
		var err error
		t, ok, err = e.LastSeen(k)
		return err
	})
	return t, ok, err
}

// SeriesCount is how many series the history knows.
func (s *Store) SeriesCount() (int, error) {
	var n int
	err := s.viewHistory(func(_ *bbolt.Tx, e *series.Engine) error {
		n = e.Len()
		return nil
	})
	return n, err
}

// Latest returns the last observed values of every series, sorted by key.
func (s *Store) Latest() ([]Latest, error) {
	var out []Latest
	err := s.viewHistory(func(_ *bbolt.Tx, e *series.Engine) error {
		var err error
		out, err = e.Latest()
		return err
	})
	return out, err
}

// SelectKeys returns the known series whose account, project and
// resource each match (a nil func matches all), in no order; each
// distinct name is matched once.
func (s *Store) SelectKeys(account, project, resource func(name string) bool) ([]quota.Key, error) {
	var out []quota.Key
	err := s.viewHistory(func(_ *bbolt.Tx, e *series.Engine) error {
		out = e.SelectKeys(account, project, resource)
		return nil
	})
	return out, err
}

// LatestUnsorted is Latest in no order.
func (s *Store) LatestUnsorted() ([]Latest, error) {
	var out []Latest
	err := s.viewHistory(func(_ *bbolt.Tx, e *series.Engine) error {
		var err error
		out, err = e.LatestUnsorted()
		return err
	})
	return out, err
}

// Keys returns every known series, sorted.
func (s *Store) Keys() ([]quota.Key, error) {
	var out []quota.Key
	err := s.viewHistory(func(_ *bbolt.Tx, e *series.Engine) error {
		out = e.Keys()
		return nil
	})
	return out, err
}

// retainBatch bounds each retention transaction so a cycle never waits
// long for it.
const retainBatch = 2000

// Retain deletes history older than before, a whole day block at a time
// (the block holding before is kept, so up to a day more is retained), in
// small transactions. Series last seen before the oldest kept block are
// forgotten.
func (s *Store) Retain(ctx context.Context, before time.Time) error {
	err := series.Retain(ctx, before, retainBatch, s.updateHistory)
	if err != nil {
		return fmt.Errorf("store: retain: %w", err)
	}
	return nil
}
