package client

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
)

// Server is a Cyclades VM (GET {compute}/servers/detail).
type Server struct {
	ID   int64  `json:"id"`
	Name string `json:"name"`
	// UserID is the owner, who is charged the quota.
	UserID string `json:"user_id"`
	// TenantID is the project the server is charged to.
	TenantID        string `json:"tenant_id"`
	SharedToProject bool   `json:"shared_to_project"`
	// Status is BUILD, ACTIVE, STOPPED, ERROR, RESIZE, REBOOT, DELETED or
	// UNKNOWN.
	Status string `json:"status"`
	// TaskState is the pending task, empty when none.
	TaskState string    `json:"SNF:task_state"`
	Flavor    FlavorRef `json:"flavor"`
	// Volumes are the ids of the attached volumes.
	Volumes   []int64 `json:"volumes"`
	Suspended bool    `json:"suspended"`
	Deleted   bool    `json:"deleted"`
}

// FlavorRef points at a flavor.
type FlavorRef struct {
	ID int64 `json:"id"`
}

// Flavor is a VM size (GET {compute}/flavors/detail).
type Flavor struct {
	ID    int64  `json:"id"`
	Name  string `json:"name"`
	VCPUs int64  `json:"vcpus"`
	// RAM is in MiB.
	RAM int64 `json:"ram"`
	// Disk is in GiB.
	Disk         int64  `json:"disk"`
	DiskTemplate string `json:"SNF:disk_template"`
}

// FloatingIP is a Cyclades floating IP (GET {network}/floatingips).
type FloatingIP struct {
	ID                string `json:"id"`
	FloatingIPAddress string `json:"floating_ip_address"`
	FixedIPAddress    string `json:"fixed_ip_address"`
	FloatingNetworkID string `json:"floating_network_id"`
	PortID            string `json:"port_id"`
	InstanceID        string `json:"instance_id"`
	UserID            string `json:"user_id"`
	TenantID          string `json:"tenant_id"`
	SharedToProject   bool   `json:"shared_to_project"`
	Deleted           bool   `json:"deleted"`
}

// Network is a Cyclades network (GET {network}/networks). Public networks
// are listed too; only private ones count toward cyclades.network.private.
type Network struct {
	ID              string `json:"id"`
	Name            string `json:"name"`
	UserID          string `json:"user_id"`
	TenantID        string `json:"tenant_id"`
	SharedToProject bool   `json:"shared_to_project"`
	Type            string `json:"type"`
	Status          string `json:"status"`
	Public          bool   `json:"public"`
	Shared          bool   `json:"shared"`
	RouterExternal  bool   `json:"router:external"`
	Deleted         bool   `json:"deleted"`
}

// Volume is a Cyclades block-storage volume (GET {volume}/volumes/detail).
type Volume struct {
	ID          string `json:"id"`
	DisplayName string `json:"display_name"`
	// Status is lower-case (in_use, available, ...).
	Status string `json:"status"`
	// Size is in GiB.
	Size                int64        `json:"size"`
	Attachments         []Attachment `json:"attachments"`
	UserID              string       `json:"user_id"`
	TenantID            string       `json:"tenant_id"`
	SharedToProject     bool         `json:"shared_to_project"`
	DeleteOnTermination bool         `json:"delete_on_termination"`
	Deleted             bool         `json:"deleted"`
}

// Attachment ties a volume to a server; DeviceIndex 0 is the system volume.
type Attachment struct {
	ServerID    int64 `json:"server_id"`
	VolumeID    int64 `json:"volume_id"`
	DeviceIndex int64 `json:"device_index"`
}

// SystemOf returns the server whose system volume v is, if any.
func (v *Volume) SystemOf() (int64, bool) {
	for _, a := range v.Attachments {
		if a.DeviceIndex == 0 {
			return a.ServerID, true
		}
	}
	return 0, false
}

// Servers lists the servers visible to the user: own ones and those shared
// to the user's projects.
func (c *Client) Servers(ctx context.Context) ([]Server, error) {
	var r struct {
		Servers []Server `json:"servers"`
	}
	if err := c.getJSON(ctx, ServiceCompute, "", &r, "servers", "detail"); err != nil {
		return nil, fmt.Errorf("servers: %w", err)
	}
	return r.Servers, nil
}

// Flavor returns one flavor (GET {compute}/flavors/<id>), retired ones
// included: they are left out of Flavors but still size the VMs that use
// them (docs/synnefo-wire.md#retired-flavors).
func (c *Client) Flavor(ctx context.Context, id int64) (*Flavor, error) {
	var r struct {
		Flavor *Flavor `json:"flavor"`
	}
	if err := c.getJSON(ctx, ServiceCompute, "", &r, "flavors", strconv.FormatInt(id, 10)); err != nil {
		return nil, fmt.Errorf("flavor %d: %w", id, err)
	}
	if r.Flavor == nil {
		return nil, fmt.Errorf("flavor %d: no flavor in the response", id)
	}
	return r.Flavor, nil
}

// Flavors lists the flavors with their sizes.
func (c *Client) Flavors(ctx context.Context) ([]Flavor, error) {
	var r struct {
		Flavors []Flavor `json:"flavors"`
	}
	if err := c.getJSON(ctx, ServiceCompute, "", &r, "flavors", "detail"); err != nil {
		return nil, fmt.Errorf("flavors: %w", err)
	}
	return r.Flavors, nil
}

// FloatingIPs lists the floating IPs visible to the user.
func (c *Client) FloatingIPs(ctx context.Context) ([]FloatingIP, error) {
	var r struct {
		FloatingIPs []FloatingIP `json:"floatingips"`
	}
	if err := c.getJSON(ctx, ServiceNetwork, "", &r, "floatingips"); err != nil {
		return nil, fmt.Errorf("floating IPs: %w", err)
	}
	return r.FloatingIPs, nil
}

// Networks lists the networks visible to the user, public ones included.
func (c *Client) Networks(ctx context.Context) ([]Network, error) {
	var r struct {
		Networks []Network `json:"networks"`
	}
	if err := c.getJSON(ctx, ServiceNetwork, "", &r, "networks"); err != nil {
		return nil, fmt.Errorf("networks: %w", err)
	}
	return r.Networks, nil
}

// Volumes lists the volumes visible to the user.
func (c *Client) Volumes(ctx context.Context) ([]Volume, error) {
	var r struct {
		Volumes []Volume `json:"volumes"`
	}
	if err := c.getJSON(ctx, ServiceVolume, "", &r, "volumes", "detail"); err != nil {
		return nil, fmt.Errorf("volumes: %w", err)
	}
	return r.Volumes, nil
}

// The Cyclades reassign calls take shared, the item's shared_to_project
// after the move: a cross-project reassign sets the flag to what the
// request says, so passing the item's current sharing keeps it and false
// unshares (docs/synnefo-wire.md#sharing-on-reassign). A cloud with sharing
// disabled refuses true with 403.

// ReassignServer charges a server (with its system volume, which takes the
// same sharing) to project (POST {compute}/servers/<id>/action; 200).
// Never retried.
func (c *Client) ReassignServer(ctx context.Context, id int64, project string, shared bool) error {
	return c.reassign(ctx, ServiceCompute, "server", project, shared, "servers", strconv.FormatInt(id, 10), "action")
}

// ReassignFloatingIP charges a floating IP to project (POST
// {network}/floatingips/<id>/action; 200). id is the IP's id, not its
// network's. Never retried.
func (c *Client) ReassignFloatingIP(ctx context.Context, id, project string, shared bool) error {
	return c.reassign(ctx, ServiceNetwork, "floating IP", project, shared, "floatingips", id, "action")
}

// ReassignNetwork charges a private network to project (POST
// {network}/networks/<id>/action; 200). Never retried.
func (c *Client) ReassignNetwork(ctx context.Context, id, project string, shared bool) error {
	return c.reassign(ctx, ServiceNetwork, "network", project, shared, "networks", id, "action")
}

// ReassignVolume charges a volume to project (POST
// {volume}/volumes/<id>/action; 200). A system volume is refused (409): it
// moves with its server. Never retried.
func (c *Client) ReassignVolume(ctx context.Context, id, project string, shared bool) error {
	return c.reassign(ctx, ServiceVolume, "volume", project, shared, "volumes", id, "action")
}

// reassignBody is the argument of the reassign action. shared_to_project
// is left out when false, which the views read as false (as kamaki sends
// it), and sent as a JSON boolean when true.
type reassignBody struct {
	Project string `json:"project"`
	Shared  bool   `json:"shared_to_project,omitempty"`
}

// reassign POSTs {"reassign": {"project": ...}}, the one-key action body
// Cyclades expects, with a real Content-Length.
func (c *Client) reassign(ctx context.Context, service, what, project string, shared bool, segs ...string) error {
	id := segs[1]
	if project == "" {
		return fmt.Errorf("reassign %s %s: %w", what, id, errNoProject)
	}
	u, _, err := c.endpoint(ctx, service, segs...)
	if err != nil {
		return fmt.Errorf("reassign %s %s: %w", what, id, err)
	}
	body, err := json.Marshal(map[string]reassignBody{"reassign": {Project: project, Shared: shared}})
	if err != nil {
		return fmt.Errorf("reassign %s %s: encoding request: %w", what, id, err)
	}
	rq := &request{service: service, method: http.MethodPost, url: u, body: body}
	if err := c.do(ctx, rq, nil); err != nil {
		return fmt.Errorf("reassign %s %s to %s: %w", what, id, project, err)
	}
	return nil
}
