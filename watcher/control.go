package watcher

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"os/user"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/quotawatch/quotawatch/quota"
	"github.com/quotawatch/quotawatch/rules"
	"github.com/quotawatch/quotawatch/store"
)

// The control path lets commands change the running daemon's state (add
// and end silences; approve and reject proposals; undo moves) without
// stopping it,
// although the daemon holds the store's lock for its whole life. The
// daemon listens on a unix socket beside the store file, mode 0600, so
// only the daemon's own user and root can connect; on Linux the peer's
// credentials are checked as well. Each connection carries one request,
// one JSON object on one line, and gets one JSON object back:
//
//	→ {"op":"silence_add","rule":"full-*","project":"CS333","for":"2h","comment":"course ends","by":"alice"}
//	← {"ok":true,"silence":{"id":3,...}}
//	→ {"op":"silence_list"}
//	← {"ok":true,"silences":[...]}
//	→ {"op":"silence_expire","id":3}
//	← {"ok":false,"error":"store: silence 3: not found"}
//	→ {"op":"approve","id":12,"comment":"ok with the lab"}
//	← {"ok":true,"action":{"id":12,"state":"verified",...}}
//
// When nothing answers on the socket (no daemon runs), commands write the
// store directly.

// Control operations.
const (
	opSilenceAdd    = "silence_add"
	opSilenceList   = "silence_list"
	opSilenceExpire = "silence_expire"
)

// controlTimeout bounds one exchange on the control socket.
const controlTimeout = 30 * time.Second

// maxControlRequest bounds a request's size.
const maxControlRequest = 64 << 10

// ControlSocket is the path of the control socket of the store at path.
func ControlSocket(storePath string) string { return storePath + ".sock" }

// controlRequest is one request on the control socket.
type controlRequest struct {
	Op string `json:"op"`
	// silence_add
	Rule     string `json:"rule,omitempty"`
	Project  string `json:"project,omitempty"`
	Resource string `json:"resource,omitempty"`
	For      string `json:"for,omitempty"` // a duration: "2h", "1d"
	Comment  string `json:"comment,omitempty"`
	By       string `json:"by,omitempty"`
	// silence_expire
	ID uint64 `json:"id,omitempty"`
	// Silence, when set, fills the silence_add fields (client side only).
	Silence *SilenceSpec `json:"-"`
}

// controlResponse is the answer to one request.
type controlResponse struct {
	OK       bool            `json:"ok"`
	Error    string          `json:"error,omitempty"`
	Silence  *store.Silence  `json:"silence,omitempty"`
	Silences []store.Silence `json:"silences,omitempty"`
	// Action is the journal entry a decision (approve, reject, undo) ends
	// with.
	Action *quota.Action `json:"action,omitempty"`
}

// silence returns the response's silence, or err.
func (r controlResponse) silence(err error) (store.Silence, error) {
	if err != nil {
		return store.Silence{}, err
	}
	if r.Silence == nil {
		return store.Silence{}, errors.New("control: the daemon answered without a silence")
	}
	return *r.Silence, nil
}

// spec reads the silence of a silence_add request.
func (r controlRequest) spec() (SilenceSpec, error) {
	d, err := rules.ParseDuration(r.For)
	if err != nil {
		return SilenceSpec{}, fmt.Errorf("for %q: %w", r.For, err)
	}
	return SilenceSpec{Rule: r.Rule, Project: r.Project, Resource: r.Resource, For: d, Comment: r.Comment, By: r.By}, nil
}

// callControl sends req to the daemon of the store at storePath and reads
// its answer into resp. answered is false when no daemon listens (no
// socket, or a stale one): the caller then works on the store itself.
// err is the daemon's refusal or a failed exchange.
func callControl(ctx context.Context, storePath string, req controlRequest, resp *controlResponse) (answered bool, err error) {
	if s := req.Silence; s != nil {
		req.Rule, req.Project, req.Resource, req.Comment, req.By = s.Rule, s.Project, s.Resource, s.Comment, s.By
		req.For = s.For.String()
	}
	sock := ControlSocket(storePath)
	d := net.Dialer{Timeout: 2 * time.Second}
	conn, err := d.DialContext(ctx, "unix", sock)
	// A socket refusing connections is stale, or a daemon starting: its
	// file exists from bind to listen. A starting daemon is waited for.
	for try := 0; try < 5 && errors.Is(err, syscall.ECONNREFUSED); try++ {
		select {
		case <-ctx.Done():
			return false, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
		conn, err = d.DialContext(ctx, "unix", sock)
	}
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ECONNREFUSED) {
			return false, nil
		}
		if errors.Is(err, fs.ErrPermission) {
			return true, fmt.Errorf("control socket %s: %w (only root and the daemon's user may use it)", sock, err)
		}
		return false, nil
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(controlTimeout))
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	raw, err := json.Marshal(req)
	if err != nil {
		return true, fmt.Errorf("control: encode request: %w", err)
	}
	if _, err := conn.Write(append(raw, '\n')); err != nil {
		return true, fmt.Errorf("control socket %s: send: %w", sock, err)
	}
	if err := json.NewDecoder(io.LimitReader(conn, 16<<20)).Decode(resp); err != nil {
		return true, fmt.Errorf("control socket %s: read answer: %w", sock, err)
	}
	if !resp.OK {
		return true, fmt.Errorf("daemon: %s", resp.Error)
	}
	return true, nil
}

// serveControl listens on the control socket until ctx ends or the
// returned stop is called (which waits for the exchanges in progress). A
// socket that cannot be made is logged: the daemon runs on without it.
func (w *Watcher) serveControl(ctx context.Context) (stop func()) {
	sock := ControlSocket(w.store.Path())
	ln, err := listenControl(sock)
	if err != nil {
		w.log.Warn("no control socket: silence and other commands cannot reach the daemon", "socket", sock, "err", err)
		return func() {}
	}
	w.log.Info("serving control", "socket", sock)
	var wg sync.WaitGroup
	ctx, cancel := context.WithCancel(ctx)
	wg.Add(1)
	go func() {
		defer wg.Done()
		<-ctx.Done()
		_ = ln.Close()
	}()
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			conn, err := ln.AcceptUnix()
			if err != nil {
				if ctx.Err() == nil && !errors.Is(err, net.ErrClosed) {
					w.log.Error("control socket stopped", "err", err)
				}
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				w.serveControlConn(ctx, conn)
			}()
		}
	}()
	return func() {
		cancel()
		wg.Wait()
	}
}

// listenControl makes the socket, replacing a stale one (never another
// kind of file), readable and writable by the owner only.
func listenControl(sock string) (*net.UnixListener, error) {
	if fi, err := os.Lstat(sock); err == nil {
		if fi.Mode()&fs.ModeSocket == 0 {
			return nil, fmt.Errorf("%s exists and is not a socket", sock)
		}
		// Only the holder of the store's lock serves its socket, and that
		// is this process: the file is left over from a previous run.
		if err := os.Remove(sock); err != nil {
			return nil, fmt.Errorf("remove stale socket: %w", err)
		}
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		return nil, err
	}
	ln.SetUnlinkOnClose(true)
	if err := os.Chmod(sock, 0o600); err != nil {
		_ = ln.Close()
		return nil, fmt.Errorf("chmod socket: %w", err)
	}
	return ln, nil
}

// serveControlConn answers the one request of a connection.
func (w *Watcher) serveControlConn(ctx context.Context, conn *net.UnixConn) {
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(controlTimeout))
	// Stopping does not wait for a slow client.
	defer context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Now()) })()
	answer := func(r controlResponse) {
		if err := json.NewEncoder(conn).Encode(r); err != nil {
			w.log.Warn("control: answering failed", "err", err)
		}
	}
	uid, err := peerUID(conn)
	if err != nil {
		w.log.Warn("control: connection refused", "err", err)
		answer(controlResponse{Error: err.Error()})
		return
	}
	line, err := bufio.NewReader(io.LimitReader(conn, maxControlRequest)).ReadBytes('\n')
	if err != nil && !(errors.Is(err, io.EOF) && len(line) > 0) {
		answer(controlResponse{Error: "read request: " + err.Error()})
		return
	}
	var req controlRequest
	if err := json.Unmarshal(line, &req); err != nil {
		answer(controlResponse{Error: "bad request: " + err.Error()})
		return
	}
	if uid >= 0 {
		// Who asked is what the kernel says, not what the request says;
		// root's claim (the user behind sudo) is kept beside it, since
		// root could claim anything anyway.
		claim := req.By
		req.By = userName(uid)
		if uid == 0 && claim != "" && claim != req.By {
			req.By += " (" + claim + ")"
		}
	}
	answer(w.control(ctx, req))
}

// control carries out one request.
func (w *Watcher) control(ctx context.Context, req controlRequest) controlResponse {
	now := w.now().UTC()
	fail := func(err error) controlResponse { return controlResponse{Error: err.Error()} }
	defer w.letGoIdle()
	if !w.leading() && req.Op != opSilenceList {
		return fail(w.followerError())
	}
	switch req.Op {
	case opSilenceAdd:
		spec, err := req.spec()
		if err == nil {
			err = spec.Check()
		}
		if err != nil {
			return fail(err)
		}
		sl, err := w.store.AddSilence(spec.silence(now))
		if err != nil {
			return fail(err)
		}
		w.refreshSilences()
		w.log.Info("silence added", "id", sl.ID, "rule", sl.Rule, "project", sl.Project, "resource", sl.Resource,
			"ends", sl.Ends.Format(time.RFC3339), "by", sl.CreatedBy, "comment", sl.Comment)
		return controlResponse{OK: true, Silence: &sl}
	case opSilenceList:
		list, err := w.store.Silences()
		if err != nil {
			return fail(err)
		}
		return controlResponse{OK: true, Silences: list}
	case opSilenceExpire:
		sl, err := w.store.ExpireSilence(req.ID, now)
		if err != nil {
			return fail(err)
		}
		w.refreshSilences()
		w.log.Info("silence expired", "id", sl.ID, "by", req.By)
		return controlResponse{OK: true, Silence: &sl}
	case OpApprove, OpReject, OpUndo:
		return w.controlDecision(ctx, req)
	}
	return fail(fmt.Errorf("unknown op %q", req.Op))
}

// refreshSilences shows the silences as they now stand on the status page.
func (w *Watcher) refreshSilences() {
	if list, err := w.store.Silences(); err == nil {
		w.showSilences(list)
	}
}

// letGoIdle lets go of the store file after a control request, as the
// cycle does, unless a cycle runs (it lets go when it ends): readers such
// as `status` must be able to open it between cycles.
func (w *Watcher) letGoIdle() {
	if !w.mu.TryLock() {
		return
	}
	defer w.mu.Unlock()
	if err := w.store.Release(); err != nil {
		w.log.Warn("releasing the store failed", "err", err)
	}
}

func userName(uid int) string {
	if u, err := user.LookupId(strconv.Itoa(uid)); err == nil {
		return u.Username
	}
	return "uid " + strconv.Itoa(uid)
}
