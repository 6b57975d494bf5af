package client

import (
	"context"
	"fmt"
	"io"
	"net/http"

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
		// The first poll sizes it from the body's length instead.
		hint := c.entriesHint.Load()
		if hint == 0 && resp.ContentLength > 0 {
			hint = min(resp.ContentLength, c.maxBody) / minEntryBytes
		}
		var err error
		es, err = decodeEntries(resp.Body, make([]quota.Entry, 0, hint))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("quotas: %w", err)
	}
	c.entriesHint.Store(int64(len(es)))
	return es, nil
}

// minEntryBytes is about the length of a short resource entry of /quotas
// (a name and six integers with their keys, its project's key shared by
// several): longer entries leave some of the slice unused, shorter ones
// cost it one growth.
const minEntryBytes = 128

// decodeEntries decodes a /quotas body strictly (see quotaScanner).
func decodeEntries(r io.Reader, out []quota.Entry) ([]quota.Entry, error) {
	return scanEntries(r, out, userFields)
}
