package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/quotawatch/quotawatch/quota"
)

// Container is a Pithos container of the user's own account.
type Container struct {
	Name string `json:"name"`
	// Count is the number of objects.
	Count int64 `json:"count"`
	// Bytes is the size of the current object versions: what is charged to
	// Policy.Project for pithos.diskspace.
	Bytes        int64           `json:"bytes"`
	LastModified time.Time       `json:"last_modified"`
	Policy       ContainerPolicy `json:"x_container_policy"`
}

// ContainerPolicy is a container's policy. On the wire its values may be
// strings or numbers.
type ContainerPolicy struct {
	// Quota is the container's own byte limit; 0 means none.
	Quota int64
	// Versioning is auto or none.
	Versioning string
	// Project is the project charged for the container. The client fills
	// in the account's UUID (the system project) when the cloud omits it.
	Project string
}

// UnmarshalJSON accepts string and number values alike.
func (p *ContainerPolicy) UnmarshalJSON(b []byte) error {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return err
	}
	if v, ok := m["quota"]; ok {
		s, err := scalar(v)
		if err != nil {
			return fmt.Errorf("container policy quota: %w", err)
		}
		if s != "" {
			n, err := strconv.ParseInt(s, 10, 64)
			if err != nil {
				return fmt.Errorf("container policy quota %q: %w", s, err)
			}
			p.Quota = n
		}
	}
	var err error
	if v, ok := m["versioning"]; ok {
		if p.Versioning, err = scalar(v); err != nil {
			return fmt.Errorf("container policy versioning: %w", err)
		}
	}
	if v, ok := m["project"]; ok {
		if p.Project, err = scalar(v); err != nil {
			return fmt.Errorf("container policy project: %w", err)
		}
	}
	return nil
}

// scalar renders a JSON string, number or null as text.
func scalar(r json.RawMessage) (string, error) {
	r = bytes.TrimSpace(r)
	switch {
	case len(r) == 0 || string(r) == "null":
		return "", nil
	case r[0] == '"':
		var s string
		err := json.Unmarshal(r, &s)
		return s, err
	case r[0] == '-' || (r[0] >= '0' && r[0] <= '9'):
		return string(r), nil
	}
	return "", fmt.Errorf("unexpected value %s", truncate(string(r), 40))
}

// Containers lists every container of the user's account, following
// marker pagination to the end (GET {object-store}/<uuid>?format=json).
func (c *Client) Containers(ctx context.Context) ([]Container, error) {
	id, err := c.user(ctx)
	if err != nil {
		return nil, fmt.Errorf("containers: %w", err)
	}
	var all []Container
	marker := ""
	for {
		v := url.Values{"format": {"json"}, "limit": {strconv.Itoa(c.pageLimit)}}
		if marker != "" {
			v.Set("marker", marker)
		}
		var page []Container
		if err := c.getJSON(ctx, ServiceObjectStore, v.Encode(), &page, id.UserID); err != nil {
			return nil, fmt.Errorf("containers: %w", err)
		}
		for i := range page {
			if page[i].Policy.Project == "" {
				page[i].Policy.Project = id.UserID
			}
		}
		all = append(all, page...)
		if len(page) < c.pageLimit {
			return all, nil
		}
		next := page[len(page)-1].Name
		if next == marker {
			return nil, fmt.Errorf("containers: listing does not advance past %q", marker)
		}
		marker = next
	}
}

// ContainerInfo reads one container's metadata (HEAD
// {object-store}/<uuid>/<name>). Header values are percent-decoded.
func (c *Client) ContainerInfo(ctx context.Context, name string) (*Container, error) {
	id, err := c.user(ctx)
	if err != nil {
		return nil, fmt.Errorf("container %s: %w", name, err)
	}
	u, _, err := c.endpoint(ctx, ServiceObjectStore, id.UserID, name)
	if err != nil {
		return nil, fmt.Errorf("container %s: %w", name, err)
	}
	ct := &Container{Name: name}
	err = c.do(ctx, &request{service: ServiceObjectStore, method: http.MethodHead, url: u}, func(resp *http.Response) error {
		h := func(k string) string {
			v := resp.Header.Get(k)
			if d, err := url.PathUnescape(v); err == nil {
				return d
			}
			return v
		}
		num := func(k string) (int64, error) {
			s := resp.Header.Get(k)
			if s == "" {
				return 0, nil
			}
			n, err := headerInt(s)
			if err != nil {
				return 0, fmt.Errorf("header %s: %w", k, err)
			}
			return n, nil
		}
		var err error
		if ct.Count, err = num("X-Container-Object-Count"); err != nil {
			return err
		}
		if ct.Bytes, err = num("X-Container-Bytes-Used"); err != nil {
			return err
		}
		if ct.Policy.Quota, err = num("X-Container-Policy-Quota"); err != nil {
			return err
		}
		ct.Policy.Versioning = h("X-Container-Policy-Versioning")
		ct.Policy.Project = h("X-Container-Policy-Project")
		if t, err := http.ParseTime(resp.Header.Get("Last-Modified")); err == nil {
			ct.LastModified = t
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("container %s: %w", name, err)
	}
	if ct.Policy.Project == "" {
		ct.Policy.Project = id.UserID
	}
	return ct, nil
}

// ReassignContainer charges the container to project (POST
// {object-store}/<uuid>/<name>?update&format=json with
// X-Container-Policy-Project; 202). The update parameter is what keeps the
// other policies and the metadata (docs/synnefo-wire.md#pithos-container-reassign). Never retried.
func (c *Client) ReassignContainer(ctx context.Context, name, project string) error {
	if project == "" {
		return fmt.Errorf("reassign container %s: %w", name, errNoProject)
	}
	id, err := c.user(ctx)
	if err != nil {
		return fmt.Errorf("reassign container %s: %w", name, err)
	}
	u, _, err := c.endpoint(ctx, ServiceObjectStore, id.UserID, name)
	if err != nil {
		return fmt.Errorf("reassign container %s: %w", name, err)
	}
	u.RawQuery = "update&format=json"
	rq := &request{
		service: ServiceObjectStore, method: http.MethodPost, url: u,
		header: http.Header{"X-Container-Policy-Project": {project}},
	}
	if err := c.do(ctx, rq, nil); err != nil {
		return fmt.Errorf("reassign container %s to %s: %w", name, project, err)
	}
	return nil
}

// Account is the Pithos account of the user (HEAD {object-store}/<uuid>).
type Account struct {
	ContainerCount int64
	BytesUsed      int64
	// ProjectQuotas maps a project UUID (lower-cased, as the cloud
	// capitalises header names) to the user's pithos.diskspace limit there.
	ProjectQuotas map[string]int64
	// QuotaTotal is the cloud's sum of those limits, saturated at
	// quota.Unlimited (the sum of several unlimited limits overflows).
	QuotaTotal   int64
	LastModified time.Time
}

// AccountInfo reads the user's Pithos account metadata.
func (c *Client) AccountInfo(ctx context.Context) (*Account, error) {
	id, err := c.user(ctx)
	if err != nil {
		return nil, fmt.Errorf("account info: %w", err)
	}
	u, _, err := c.endpoint(ctx, ServiceObjectStore, id.UserID)
	if err != nil {
		return nil, fmt.Errorf("account info: %w", err)
	}
	a := &Account{ProjectQuotas: map[string]int64{}}
	err = c.do(ctx, &request{service: ServiceObjectStore, method: http.MethodHead, url: u}, func(resp *http.Response) error {
		const prefix = "x-account-policy-quota-"
		for k, vs := range resp.Header {
			lk := strings.ToLower(k)
			if !strings.HasPrefix(lk, prefix) || len(vs) == 0 {
				continue
			}
			n, err := headerInt(vs[0])
			if err != nil {
				return fmt.Errorf("header %s: %w", k, err)
			}
			a.ProjectQuotas[lk[len(prefix):]] = n
		}
		for _, f := range []struct {
			k string
			v *int64
		}{
			{"X-Account-Container-Count", &a.ContainerCount},
			{"X-Account-Bytes-Used", &a.BytesUsed},
			{"X-Account-Policy-Quota", &a.QuotaTotal},
		} {
			if v := resp.Header.Get(f.k); v != "" {
				n, err := headerInt(v)
				if err != nil {
					return fmt.Errorf("header %s: %w", f.k, err)
				}
				*f.v = n
			}
		}
		if t, err := http.ParseTime(resp.Header.Get("Last-Modified")); err == nil {
			a.LastModified = t
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("account info: %w", err)
	}
	return a, nil
}

// headerInt parses a percent-encoded integer header value, saturating
// values beyond int64 at quota.Unlimited.
func headerInt(v string) (int64, error) {
	if d, err := url.PathUnescape(v); err == nil {
		v = d
	}
	v = strings.TrimSpace(v)
	n, err := strconv.ParseInt(v, 10, 64)
	var ne *strconv.NumError
	if errors.As(err, &ne) && errors.Is(ne.Err, strconv.ErrRange) && !strings.HasPrefix(v, "-") {
		return quota.Unlimited, nil
	}
	return n, err
}
