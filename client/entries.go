package client

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"

	"github.com/quotawatch/quotawatch/quota"
)

// QuotaEntries is Quotas as a flat list: projects in the order the cloud
// wrote them, each project's resources by name.
// The daemon polls with it: no intermediate maps, and an order that stays
// the same from one poll to the next, which lets the store compare each
// entry with its previous value without a lookup.
func (c *Client) QuotaEntries(ctx context.Context) ([]quota.Entry, error) {
	u, _, err := c.endpoint(ctx, ServiceAccount, "quotas")
	if err != nil {
		return nil, fmt.Errorf("quotas: %w", err)
	}
	var es []quota.Entry
	err = c.do(ctx, &request{service: ServiceAccount, method: http.MethodGet, url: u}, func(resp *http.Response) error {
		// Sized like the last poll's: growing a slice of tens of
		// thousands of entries by doubling costs twice its size again.
		var err error
		es, err = decodeEntries(resp.Body, make([]quota.Entry, 0, c.entriesHint.Load()))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("quotas: %w", err)
	}
	c.entriesHint.Store(int64(len(es)))
	return es, nil
}

// decodeEntries streams the project → resource → quota object into
// entries, one project at a time: projects in the body's order, resources
// by name (a project's resources come out of a map).
func decodeEntries(r io.Reader, out []quota.Entry) ([]quota.Entry, error) {
	dec := json.NewDecoder(r)
	t, err := dec.Token()
	if err != nil {
		return nil, fmt.Errorf("decoding response: %w", err)
	}
	if t == nil {
		return out, nil // null
	}
	if d, ok := t.(json.Delim); !ok || d != '{' {
		return nil, fmt.Errorf("decoding response: want an object, got %v", t)
	}
	var rs map[string]quota.Quota // reused for every project
	names := make([]string, 0, 16)
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return nil, fmt.Errorf("decoding response: %w", err)
		}
		project, _ := t.(string) // object keys are always strings
		clear(rs)
		if err := dec.Decode(&rs); err != nil {
			return nil, fmt.Errorf("decoding quotas of project %s: %w", project, err)
		}
		names = names[:0]
		for r := range rs {
			names = append(names, r)
		}
		slices.Sort(names)
		for _, r := range names {
			out = append(out, quota.Entry{Project: project, Resource: r, Quota: rs[r]})
		}
	}
	if _, err := dec.Token(); err != nil {
		return nil, fmt.Errorf("decoding response: %w", err)
	}
	return out, nil
}
