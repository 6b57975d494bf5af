package synnefosim

import (
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/quotawatch/quotawatch/quota"
)

// pithosEscape percent-encodes a header value as Pithos does (safe chars
// `/=,:@; "`, docs/synnefo-wire.md#container-metadata).
func pithosEscape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		ch := s[i]
		if ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z' || ch >= '0' && ch <= '9' ||
			strings.IndexByte("_.-~/=,:@; \"", ch) >= 0 {
			b.WriteByte(ch)
			continue
		}
		fmt.Fprintf(&b, "%%%02X", ch)
	}
	return b.String()
}

func (c *Cloud) servePithos(w http.ResponseWriter, r *http.Request, rest string) {
	parts := strings.SplitN(strings.TrimPrefix(rest, "/"), "/", 3)
	switch {
	case parts[0] == "":
		endpointNotFound(w)
	case len(parts) == 1 || (len(parts) == 2 && parts[1] == ""):
		c.servePithosAccount(w, r, parts[0])
	case len(parts) == 2 || (len(parts) == 3 && parts[2] == ""):
		c.servePithosContainer(w, r, parts[0], parts[1])
	default:
		// Objects are not simulated; the container exists or not.
		if _, ok := c.authUser(w, r); !ok {
			return
		}
		writeFault(w, http.StatusNotFound, "", "Object does not exist", "")
	}
}

type containerJSON struct {
	Name         string            `json:"name"`
	Count        int64             `json:"count"`
	Bytes        int64             `json:"bytes"`
	LastModified string            `json:"last_modified"`
	Policy       map[string]string `json:"x_container_policy"`
}

func (c *Cloud) servePithosAccount(w http.ResponseWriter, r *http.Request, account string) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		notAllowed(w, http.MethodGet, http.MethodHead, http.MethodPost)
		return
	}
	u, ok := c.authUser(w, r)
	if !ok {
		return
	}
	q := r.URL.Query()
	c.mu.Lock()
	var owned map[string]*containerState
	if u.UUID == account {
		owned = c.containers[account]
	}
	names := slices.Sorted(maps.Keys(owned))
	var bytesUsed int64
	for _, ct := range owned {
		bytesUsed += ct.Bytes
	}
	h := w.Header()
	h.Set("X-Account-Container-Count", strconv.Itoa(len(names)))
	h.Set("X-Account-Bytes-Used", strconv.FormatInt(bytesUsed, 10))
	h.Set("X-Account-Policy-Versioning", "auto")
	h.Set("Last-Modified", c.now().UTC().Format(http.TimeFormat))
	if u.UUID == account {
		var sum uint64
		for _, id := range c.memberOf[account] {
			p := c.projects[id]
			if !p.holds(account) || !p.accepted(account) {
				continue
			}
			l := c.quotaOf(account, p, quota.DiskSpace).Limit
			sum += uint64(l)
			h.Set("X-Account-Policy-Quota-"+id, strconv.FormatInt(l, 10))
		}
		h.Set("X-Account-Policy-Quota", strconv.FormatUint(sum, 10))
	}
	if r.Method == http.MethodHead {
		c.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
		return
	}
	limit, err := strconv.Atoi(q.Get("limit"))
	if err != nil || limit <= 0 {
		limit = c.pageLimit
	}
	if q.Has("marker") {
		marker := q.Get("marker")
		i := sort.SearchStrings(names, marker)
		for i < len(names) && names[i] <= marker {
			i++
		}
		names = names[i:]
	}
	if len(names) > limit {
		names = names[:limit]
	}
	asJSON := q.Get("format") == "json" || (q.Get("format") == "" && strings.Contains(r.Header.Get("Accept"), "application/json"))
	var list []containerJSON
	if asJSON {
		list = make([]containerJSON, 0, len(names))
		for _, n := range names {
			ct := owned[n]
			list = append(list, containerJSON{
				Name: n, Count: ct.Count, Bytes: ct.Bytes, LastModified: c.timestamp(ct.lastModified),
				Policy: map[string]string{"quota": strconv.FormatInt(ct.Quota, 10), "versioning": ct.Versioning, "project": ct.Project},
			})
		}
	}
	c.mu.Unlock()
	if asJSON {
		writeJSON(w, http.StatusOK, list)
		return
	}
	if len(names) == 0 {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	writeRaw(w, http.StatusOK, "text/plain; charset=utf-8", []byte(strings.Join(names, "\n")+"\n"))
}

func (c *Cloud) servePithosContainer(w http.ResponseWriter, r *http.Request, account, name string) {
	if name != "" {
		if n, err := url.PathUnescape(name); err == nil {
			name = n
		}
	}
	switch r.Method {
	case http.MethodHead, http.MethodGet, http.MethodPost:
	default:
		notAllowed(w, http.MethodHead, http.MethodGet, http.MethodPost, http.MethodPut, http.MethodDelete)
		return
	}
	u, ok := c.authUser(w, r)
	if !ok {
		return
	}
	if r.Method == http.MethodPost {
		c.updateContainer(w, r, u, account, name)
		return
	}
	c.mu.Lock()
	ct := c.containers[account][name]
	var hdr map[string]string
	if ct != nil && u.UUID == account {
		hdr = map[string]string{
			"X-Container-Object-Count":      strconv.FormatInt(ct.Count, 10),
			"X-Container-Bytes-Used":        strconv.FormatInt(ct.Bytes, 10),
			"X-Container-Block-Size":        "4194304",
			"X-Container-Block-Hash":        "sha256",
			"X-Container-Object-Meta":       "",
			"X-Container-Policy-Quota":      strconv.FormatInt(ct.Quota, 10),
			"X-Container-Policy-Versioning": ct.Versioning,
			"X-Container-Policy-Project":    ct.Project,
			"Last-Modified":                 ct.lastModified.UTC().Format(http.TimeFormat),
		}
		for k, v := range ct.meta {
			hdr["X-Container-Meta-"+k] = v
		}
	}
	c.mu.Unlock()
	switch {
	case ct == nil:
		if r.Method == http.MethodHead {
			w.WriteHeader(http.StatusNotFound)
			return
		}
		writeFault(w, http.StatusNotFound, "", "Container does not exist", "")
		return
	case hdr == nil:
		if r.Method == http.MethodHead {
			w.WriteHeader(http.StatusForbidden)
			return
		}
		writeFault(w, http.StatusForbidden, "", "Not allowed", "")
		return
	}
	for k, v := range hdr {
		if k == "Last-Modified" {
			w.Header().Set(k, v)
			continue
		}
		w.Header().Set(k, pithosEscape(v))
	}
	// Objects are not simulated: the object listing is empty.
	if r.Method == http.MethodGet && r.URL.Query().Get("format") == "json" {
		writeRaw(w, http.StatusOK, "application/json; charset=utf-8", []byte("[]"))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// updateContainer is POST on a container: with X-Container-Policy-Project
// it reassigns (quota-checked commission); without ?update the whole policy
// is replaced and a missing project resets to the account, uncharged.
func (c *Cloud) updateContainer(w http.ResponseWriter, r *http.Request, u *User, account, name string) {
	policy := map[string]string{}
	for k, vs := range r.Header {
		lk := strings.ToLower(k)
		if !strings.HasPrefix(lk, "x-container-policy-") || len(vs) == 0 {
			continue
		}
		v := strings.ReplaceAll(vs[0], " ", "")
		if dv, err := url.PathUnescape(v); err == nil {
			v = dv
		}
		policy[strings.TrimPrefix(lk, "x-container-policy-")] = v
	}
	for k, v := range policy {
		switch k {
		case "project":
		case "quota":
			if n, err := strconv.ParseInt(v, 10, 64); err != nil || n < 0 {
				writeFault(w, http.StatusBadRequest, "", "Invalid quota header", "")
				return
			}
		case "versioning":
			if v != "auto" && v != "none" {
				writeFault(w, http.StatusBadRequest, "", "Invalid versioning header", "")
				return
			}
		default:
			writeFault(w, http.StatusBadRequest, "", "The only allowed policies are 'quota' or 'versioning'.", "")
			return
		}
	}
	update := r.URL.Query().Has("update")
	c.mu.Lock()
	defer c.mu.Unlock()
	ct := c.containers[account][name]
	if ct == nil {
		writeFault(w, http.StatusNotFound, "", "Container does not exist", "")
		return
	}
	if u.UUID != account {
		writeFault(w, http.StatusForbidden, "", "Not allowed", "")
		return
	}
	if dest, ok := policy["project"]; ok {
		p := c.projects[dest]
		if dest == "" || p == nil || !p.holds(account) {
			// Astakos's NoHoldingError, proxied through astakosclient.
			writeProxied(w, http.StatusNotFound, fmt.Sprintf("There is no such holding for user %s in project %s", account, dest))
			return
		}
		q := c.quotaOf(account, p, quota.DiskSpace)
		n := ct.Bytes
		if dest == ct.charged {
			n = 0 // the provisions sum to 0 but still run the check
		}
		if n > 0 {
			if e := c.checkRelease(account, ct.charged, []provision{{quota.DiskSpace, n}}, "fault"); e != nil {
				writeActionError(w, e)
				return
			}
		}
		if !q.Fits(n) {
			writeFault(w, http.StatusRequestEntityTooLarge, "fault", "Resource Limit Exceeded for your account.",
				fmt.Sprintf("Limit for resource 'Storage space' exceeded for your account. Available: %d, Requested: %d", available(q), ct.Bytes))
			return
		}
		c.add(account, ct.charged, quota.DiskSpace, -ct.Bytes)
		c.add(account, dest, quota.DiskSpace, ct.Bytes)
		ct.charged = dest
		ct.Project = dest
	} else if !update {
		// The project policy resets to the account, with no commission
		// (docs/synnefo-wire.md#pithos-container-reassign).
		ct.Project = account
		clear(c.cache)
	}
	if v, ok := policy["quota"]; ok {
		ct.Quota, _ = strconv.ParseInt(v, 10, 64)
	} else if !update {
		ct.Quota = 0
	}
	if v, ok := policy["versioning"]; ok {
		ct.Versioning = v
	} else if !update {
		ct.Versioning = "auto"
	}
	if !update {
		ct.meta = nil
	}
	for k, vs := range r.Header {
		if strings.HasPrefix(strings.ToLower(k), "x-container-meta-") && len(vs) > 0 {
			if ct.meta == nil {
				ct.meta = map[string]string{}
			}
			ct.meta[k[len("X-Container-Meta-"):]] = vs[0]
		}
	}
	w.WriteHeader(http.StatusAccepted)
}

// available is what the failing level had left: the member level when it
// is the one exceeded, else the project level.
func available(q quota.Quota) int64 {
	if q.Limit-q.Usage < q.ProjectLimit-q.ProjectUsage {
		return q.Limit - q.Usage
	}
	return q.ProjectLimit - q.ProjectUsage
}
