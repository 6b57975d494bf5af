package client

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/quotawatch/quotawatch/quota"
)

// Items lists the items of the given kind that the user owns (user_id is
// the user's UUID; containers of the user's account) and that are charged
// to project, each with the quantities a move would carry. Busy is set on
// items the cloud would refuse to move now.
func (c *Client) Items(ctx context.Context, kind quota.Kind, project string) ([]quota.Item, error) {
	id, err := c.user(ctx)
	if err != nil {
		return nil, fmt.Errorf("%s items: %w", kind, err)
	}
	all, err := c.items(ctx, kind, id.UserID)
	if err != nil {
		return nil, fmt.Errorf("%s items in %s: %w", kind, project, err)
	}
	out := all[:0]
	for _, it := range all {
		if it.Owner == id.UserID && it.Project == project {
			out = append(out, it)
		}
	}
	return out, nil
}

// Item reads one item back by kind and id, whoever owns it. An item that
// does not exist (or is deleted) gives an error for which IsNotFound holds.
func (c *Client) Item(ctx context.Context, kind quota.Kind, id string) (quota.Item, error) {
	ident, err := c.user(ctx)
	if err != nil {
		return quota.Item{}, fmt.Errorf("%s %s: %w", kind, id, err)
	}
	if kind == quota.KindContainer {
		ct, err := c.ContainerInfo(ctx, id)
		if err != nil {
			return quota.Item{}, err
		}
		return containerItem(*ct, ident.UserID), nil
	}
	all, err := c.items(ctx, kind, ident.UserID)
	if err != nil {
		return quota.Item{}, fmt.Errorf("%s %s: %w", kind, id, err)
	}
	for _, it := range all {
		if it.ID == id {
			return it, nil
		}
	}
	// Listings leave out deleted items, so absence is the cloud's 404.
	return quota.Item{}, fmt.Errorf("%s %s: %w", kind, id, &Error{
		Status: http.StatusNotFound, Key: "itemNotFound", Message: "not listed",
	})
}

// Reassign moves an item to project through the call of its kind,
// sending it.Shared as the item's sharing after the move (so an item read
// from Items stays shared; clear Shared to unshare). Never retried.
func (c *Client) Reassign(ctx context.Context, it quota.Item, project string) error {
	switch it.Kind {
	case quota.KindContainer:
		return c.ReassignContainer(ctx, it.ID, project)
	case quota.KindServer:
		n, err := strconv.ParseInt(it.ID, 10, 64)
		if err != nil {
			return fmt.Errorf("reassign server %q: id is not an integer", it.ID)
		}
		return c.ReassignServer(ctx, n, project, it.Shared)
	case quota.KindFloatingIP:
		return c.ReassignFloatingIP(ctx, it.ID, project, it.Shared)
	case quota.KindNetwork:
		return c.ReassignNetwork(ctx, it.ID, project, it.Shared)
	case quota.KindVolume:
		return c.ReassignVolume(ctx, it.ID, project, it.Shared)
	}
	return fmt.Errorf("reassign: unknown item kind %q", it.Kind)
}

// items lists every visible item of a kind as quota.Item.
func (c *Client) items(ctx context.Context, kind quota.Kind, user string) ([]quota.Item, error) {
	switch kind {
	case quota.KindContainer:
		cs, err := c.Containers(ctx)
		if err != nil {
			return nil, err
		}
		out := make([]quota.Item, len(cs))
		for i, ct := range cs {
			out[i] = containerItem(ct, user)
		}
		return out, nil
	case quota.KindServer:
		return c.serverItems(ctx)
	case quota.KindFloatingIP:
		ips, err := c.FloatingIPs(ctx)
		if err != nil {
			return nil, err
		}
		out := make([]quota.Item, len(ips))
		for i, ip := range ips {
			out[i] = quota.Item{
				Kind: kind, ID: ip.ID, Name: ip.FloatingIPAddress, Owner: ip.UserID, Project: ip.TenantID,
				Quantities: quota.FloatingIPQuantities(), Busy: deletedBusy(ip.Deleted), Shared: ip.SharedToProject,
			}
		}
		return out, nil
	case quota.KindNetwork:
		ns, err := c.Networks(ctx)
		if err != nil {
			return nil, err
		}
		out := make([]quota.Item, len(ns))
		for i, n := range ns {
			it := quota.Item{
				Kind: kind, ID: n.ID, Name: n.Name, Owner: n.UserID, Project: n.TenantID,
				Quantities: quota.NetworkQuantities(), Busy: deletedBusy(n.Deleted), Shared: n.SharedToProject,
			}
			if n.Public {
				it.Busy = "public network"
				it.Quantities = quota.Quantities{}
			}
			out[i] = it
		}
		return out, nil
	case quota.KindVolume:
		vs, err := c.Volumes(ctx)
		if err != nil {
			return nil, err
		}
		busy, err := c.busyServers(ctx, vs)
		if err != nil {
			return nil, err
		}
		out := make([]quota.Item, len(vs))
		for i, v := range vs {
			it := quota.Item{
				Kind: kind, ID: v.ID, Name: v.DisplayName, Owner: v.UserID, Project: v.TenantID,
				Quantities: quota.VolumeQuantities(v.Size), Busy: deletedBusy(v.Deleted), Shared: v.SharedToProject,
			}
			if srv, ok := v.SystemOf(); ok && it.Busy == "" {
				it.Busy = fmt.Sprintf("system volume of server %d (moves with it)", srv)
			}
			for _, a := range v.Attachments {
				if why, ok := busy[a.ServerID]; ok && it.Busy == "" {
					it.Busy = fmt.Sprintf("attached to server %d, which is %s", a.ServerID, why)
				}
			}
			out[i] = it
		}
		return out, nil
	}
	return nil, fmt.Errorf("unknown item kind %q", kind)
}

func containerItem(ct Container, user string) quota.Item {
	return quota.Item{
		Kind: quota.KindContainer, ID: ct.Name, Name: ct.Name, Owner: user, Project: ct.Policy.Project,
		Quantities: quota.ContainerQuantities(ct.Bytes),
	}
}

func deletedBusy(deleted bool) string {
	if deleted {
		return "deleted"
	}
	return ""
}

// serverItems joins servers with flavors (CPU, RAM) and volumes (the size
// of each system volume), which is what a server reassign carries. A
// flavor missing from the listing (retired) is read by id, once per
// listing.
func (c *Client) serverItems(ctx context.Context) ([]quota.Item, error) {
	srvs, err := c.Servers(ctx)
	if err != nil {
		return nil, err
	}
	if len(srvs) == 0 {
		return nil, nil
	}
	fls, err := c.Flavors(ctx)
	if err != nil {
		return nil, err
	}
	vols, err := c.Volumes(ctx)
	if err != nil {
		return nil, err
	}
	flavors := make(map[int64]Flavor, len(fls))
	for _, f := range fls {
		flavors[f.ID] = f
	}
	sysDisk := make(map[int64]int64, len(srvs))
	for _, v := range vols {
		if srv, ok := v.SystemOf(); ok && !v.Deleted {
			sysDisk[srv] = v.Size
		}
	}
	missing := map[int64]error{}
	out := make([]quota.Item, len(srvs))
	for i, s := range srvs {
		it := quota.Item{
			Kind: quota.KindServer, ID: strconv.FormatInt(s.ID, 10), Name: s.Name,
			Owner: s.UserID, Project: s.TenantID, Shared: s.SharedToProject,
		}
		f, ok := flavors[s.Flavor.ID]
		if _, tried := missing[s.Flavor.ID]; !ok && !tried {
			fl, err := c.Flavor(ctx, s.Flavor.ID)
			if err != nil && !IsNotFound(err) && !IsForbidden(err) {
				return nil, err
			}
			missing[s.Flavor.ID] = err
			if err == nil {
				flavors[fl.ID] = *fl
				f, ok = *fl, true
			}
		}
		disk, hasDisk := sysDisk[s.ID]
		if !hasDisk {
			disk = f.Disk
		}
		it.Quantities = quota.ServerQuantities(f.VCPUs, f.RAM, disk, quota.ServerRunning(s.Status))
		switch {
		case s.Deleted || s.Status == "DELETED":
			it.Busy = "deleted"
		case s.Status == "BUILD":
			it.Busy = "being built"
		case s.TaskState != "":
			it.Busy = "pending task " + s.TaskState
		case s.Suspended:
			it.Busy = "administratively suspended"
		case !ok:
			// Neither listed nor readable (a private flavor of another
			// owner's shared VM): the quantities are unknown.
			it.Busy = fmt.Sprintf("flavor %d is not listed", s.Flavor.ID)
		}
		out[i] = it
	}
	return out, nil
}

// busyServers returns why each server that a data volume is attached to
// cannot take part in a reassign now (a pending task or a build). It lists
// servers only when some data volume is attached.
func (c *Client) busyServers(ctx context.Context, vs []Volume) (map[int64]string, error) {
	attached := false
	for _, v := range vs {
		if _, sys := v.SystemOf(); !sys && len(v.Attachments) > 0 {
			attached = true
			break
		}
	}
	if !attached {
		return nil, nil
	}
	srvs, err := c.Servers(ctx)
	if err != nil {
		return nil, err
	}
	busy := map[int64]string{}
	for _, s := range srvs {
		switch {
		case s.Status == "BUILD":
			busy[s.ID] = "being built"
		case s.TaskState != "":
			busy[s.ID] = "busy with " + s.TaskState
		}
	}
	return busy, nil
}

// requireCounts checks that the listed fields of one listing element are
// present and non-negative integers: the planner sizes moves from them, so
// a missing size must fail the listing, not read as zero.
func requireCounts(b []byte, what string, fields ...string) error {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if id, ok := m["id"]; ok {
		what += " " + strings.Trim(string(id), `"`)
	} else if name, ok := m["name"]; ok {
		what += " " + strings.Trim(string(name), `"`)
	}
	for _, f := range fields {
		v, ok := m[f]
		switch {
		case !ok:
			return fmt.Errorf("%s: field %s missing", what, f)
		case string(v) == "null":
			return fmt.Errorf("%s: field %s is null", what, f)
		}
		var n int64
		if err := json.Unmarshal(v, &n); err != nil {
			return fmt.Errorf("%s: field %s is not an integer: %s", what, f, v)
		}
		if n < 0 {
			return fmt.Errorf("%s: field %s is negative: %d", what, f, n)
		}
	}
	return nil
}

// UnmarshalJSON requires the container's size.
func (ct *Container) UnmarshalJSON(b []byte) error {
	if err := requireCounts(b, "container", "bytes"); err != nil {
		return err
	}
	type plain Container
	return json.Unmarshal(b, (*plain)(ct))
}

// UnmarshalJSON requires the flavor's id and sizes.
func (f *Flavor) UnmarshalJSON(b []byte) error {
	if err := requireCounts(b, "flavor", "id", "vcpus", "ram", "disk"); err != nil {
		return err
	}
	type plain Flavor
	return json.Unmarshal(b, (*plain)(f))
}

// UnmarshalJSON requires the volume's size.
func (v *Volume) UnmarshalJSON(b []byte) error {
	if err := requireCounts(b, "volume", "size"); err != nil {
		return err
	}
	type plain Volume
	return json.Unmarshal(b, (*plain)(v))
}
