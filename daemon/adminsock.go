package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// The admin socket.
//
// bbolt locks its file while the node runs, so a backup of the embedded
// store must come from the node itself. It serves one on a Unix socket,
// DATA_DIR/admin.sock, of mode 0600 in a DATA_DIR of mode 0700: only the
// node's own user (and root) can connect, and nothing crosses the network,
// so no token is needed and none can leak. An admin HTTP endpoint would
// have needed an admin token and would put a copy of every password hash
// and message one stolen token away from anywhere the API is reachable.
// The socket speaks HTTP (framing, status and length for free) and serves
// only GET /store: a consistent copy of the store.

const adminSocketFile = "admin.sock"

// backupSource is what the admin socket needs of the store: bolt.Store.
type backupSource interface {
	Backup(ctx context.Context, start func(size int64) (io.Writer, error)) error
}

type adminSocket struct {
	path string
	srv  *http.Server
}

// serveAdmin listens on DATA_DIR/admin.sock. The socket is bound under a
// name of its own, made 0600 and only then renamed into place, so it is
// never reachable with looser permissions. A socket left by a node that
// died is replaced: this node holds the store's lock, so no other node
// serves this DATA_DIR.
func serveAdmin(dir string, src backupSource, log, audit *slog.Logger) (*adminSocket, error) {
	path := filepath.Join(dir, adminSocketFile)
	tmp := filepath.Join(dir, fmt.Sprintf(".admin-%d.sock", os.Getpid()))
	os.Remove(tmp)
	ln, err := net.Listen("unix", tmp)
	if err != nil {
		return nil, fmt.Errorf("admin socket: %w", err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	if err := os.Chmod(tmp, 0o600); err != nil {
		ln.Close()
		os.Remove(tmp)
		return nil, fmt.Errorf("admin socket: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		ln.Close()
		os.Remove(tmp)
		return nil, fmt.Errorf("admin socket: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /store", func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		var size int64
		sent := false
		err := src.Backup(r.Context(), func(n int64) (io.Writer, error) {
			size, sent = n, true
			w.Header().Set("Content-Type", "application/octet-stream")
			w.Header().Set("Content-Length", strconv.FormatInt(n, 10))
			w.WriteHeader(http.StatusOK)
			return w, nil
		})
		if err != nil {
			log.Error("admin socket: backup", "err", err)
			if !sent { // else the client sees a short copy, and its check fails
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusServiceUnavailable)
				json.NewEncoder(w).Encode(map[string]string{"error": err.Error()})
			}
			return
		}
		if audit != nil {
			audit.Info("store.backup", "bytes", size, "took", time.Since(start), "via", "admin socket")
		}
	})
	s := &adminSocket{path: path, srv: &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}}
	go s.srv.Serve(ln)
	return s, nil
}

// close stops the socket (a backup in progress is cut off, and its check
// fails) and removes it.
func (s *adminSocket) close() {
	s.srv.Close()
	os.Remove(s.path)
}

// fetchOnline asks the node serving dir's admin socket for a copy of its
// store. errNoNode means no node answers there.
func fetchOnline(ctx context.Context, dir string) (io.ReadCloser, int64, error) {
	path := filepath.Join(dir, adminSocketFile)
	c := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{Timeout: 2 * time.Second}).DialContext(ctx, "unix", path)
	}}}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://admin/store", nil)
	resp, err := c.Do(req)
	if err != nil {
		var op *net.OpError
		if errors.As(err, &op) && op.Op == "dial" {
			return nil, 0, errNoNode
		}
		return nil, 0, fmt.Errorf("backup: %s: %w", path, err)
	}
	if resp.StatusCode != http.StatusOK || resp.ContentLength < 0 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		resp.Body.Close()
		return nil, 0, fmt.Errorf("backup: the node answered %d: %s", resp.StatusCode, b)
	}
	return resp.Body, resp.ContentLength, nil
}

var errNoNode = errors.New("no node answers on the admin socket")
