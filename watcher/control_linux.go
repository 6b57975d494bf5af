package watcher

import (
	"fmt"
	"net"
	"os"
	"syscall"
)

// peerUID returns the user id of the process at the other end, and
// refuses any user but root and the daemon's own (the socket's mode
// already says so; this holds even if the mode is loosened).
func peerUID(c *net.UnixConn) (int, error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return -1, fmt.Errorf("peer credentials: %w", err)
	}
	var (
		cred *syscall.Ucred
		cerr error
	)
	if err := raw.Control(func(fd uintptr) {
		cred, cerr = syscall.GetsockoptUcred(int(fd), syscall.SOL_SOCKET, syscall.SO_PEERCRED)
	}); err != nil {
		return -1, fmt.Errorf("peer credentials: %w", err)
	}
	if cerr != nil {
		return -1, fmt.Errorf("peer credentials: %w", cerr)
	}
	if cred.Uid != 0 && int(cred.Uid) != os.Getuid() {
		return -1, fmt.Errorf("uid %d may not control the daemon", cred.Uid)
	}
	return int(cred.Uid), nil
}
