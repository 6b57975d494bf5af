package synnefosim

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// serveUserCatalogs answers POST {account}/user_catalogs: the display names
// (lower-cased e-mail addresses) of the given UUIDs and the UUIDs of the
// given display names. Unknown ones are left out; the body is decoded
// whatever its Content-Type, as Astakos does.
func (c *Cloud) serveUserCatalogs(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		notAllowed(w, http.MethodPost)
		return
	}
	if _, ok := c.authAstakos(w, r); !ok {
		return
	}
	raw, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil || len(raw) == 0 {
		writeFault(w, http.StatusBadRequest, "", "Request body should be json formatted.", "")
		return
	}
	var req map[string]json.RawMessage
	if err := json.Unmarshal(raw, &req); err != nil {
		var anything any
		if json.Unmarshal(raw, &anything) == nil {
			writeFault(w, http.StatusBadRequest, "", "Request body should be a json formatted dictionary", "")
			return
		}
		writeFault(w, http.StatusBadRequest, "", "Request body should be json formatted.", "")
		return
	}
	var uuids, names []string
	if v, ok := req["uuids"]; ok && string(v) != "null" {
		// uuids is not validated by Astakos; anything but a list of
		// strings finds nobody.
		_ = json.Unmarshal(v, &uuids)
	}
	if v, ok := req["displaynames"]; ok {
		var list []any
		if string(v) == "null" || json.Unmarshal(v, &list) != nil {
			writeFault(w, http.StatusBadRequest, "", fmt.Sprintf("Invalid displaynames: %s", v), "")
			return
		}
		for _, n := range list {
			s, ok := n.(string)
			if !ok {
				writeFault(w, http.StatusBadRequest, "", "Items in 'displaynames' must be strings", "")
				return
			}
			names = append(names, s)
		}
	}
	byUUID := map[string]string{}
	byName := map[string]string{}
	c.mu.Lock()
	for _, id := range uuids {
		if u, ok := c.users[id]; ok {
			byUUID[id] = strings.ToLower(u.Name)
		}
	}
	for _, n := range names {
		for _, u := range c.users {
			if strings.EqualFold(u.Name, n) {
				byName[n] = u.UUID // the caller's spelling is kept
				break
			}
		}
	}
	c.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]map[string]string{"uuid_catalog": byUUID, "displayname_catalog": byName})
}
