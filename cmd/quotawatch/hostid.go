package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
)

// machineIDFile is systemd's stable id of the installation. Host names
// are not unique across machines, nor stable, so they are the fallback.
const machineIDFile = "/etc/machine-id"

// localHostID is this host's id as the store records its writer.
func localHostID() (string, error) {
	return hostIDFrom(os.ReadFile, os.Hostname)
}

// hostIDFrom is the machine id from read(machineIDFile) when it is one (32
// hex digits, in lower case), else the host name; an image's empty or "uninitialized"
// machine-id counts as absent.
func hostIDFrom(read func(string) ([]byte, error), hostname func() (string, error)) (string, error) {
	b, err := read(machineIDFile)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("host id: %w", err)
	}
	if id := strings.ToLower(strings.TrimSpace(string(b))); isMachineID(id) {
		return id, nil
	}
	name, err := hostname()
	if err != nil {
		return "", fmt.Errorf("host id: no %s, and no host name: %w", machineIDFile, err)
	}
	if name == "" {
		return "", fmt.Errorf("host id: no %s, and an empty host name", machineIDFile)
	}
	return name, nil
}

func isMachineID(s string) bool {
	if len(s) != 32 {
		return false
	}
	for _, c := range s {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}
