package node

import (
	"context"
	"errors"
	"maps"
	"net/http"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/fednode/fednode"
	"github.com/fednode/fednode/keys"
)

func (s *Server) handleHealthz(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// handleReadyz says whether this process should be sent traffic: not
// while it shuts down, nor while the store cannot take writes or another
// dependency (Vault) is needed and unreachable. The reasons are named; internal detail goes to
// the log only.
func (s *Server) handleReadyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	out := map[string]string{"status": "ready"}
	var problems []string
	if s.draining.Load() {
		problems = append(problems, "the node is shutting down")
	} else {
		for _, c := range s.checkDependencies(ctx) {
			switch {
			case c.err == nil:
				out[c.name] = "ok"
			case c.name == "store":
				problems = append(problems, "store: "+storeProblem(c.err))
			default:
				problems = append(problems, c.name+": "+strings.TrimPrefix(c.err.Error(), keys.ErrUnavailable.Error()+": "))
			}
		}
	}
	if len(problems) > 0 {
		writeError(w, r, s.log, &fednode.Error{Code: fednode.EUnavailable, Message: "not ready: " + strings.Join(problems, "; "), RetryAfter: 5})
		return
	}
	writeJSON(w, http.StatusOK, out)
}

// depCheck is the outcome of one dependency's readiness check.
type depCheck struct {
	name string // "store", or a name of Deps.Ready ("vault")
	err  error
}

// checkDependencies runs the readiness checks, the store's first, and logs
// each failure with its cause. Readiness and the metrics share them.
func (s *Server) checkDependencies(ctx context.Context) []depCheck {
	out := []depCheck{{name: "store", err: s.store.Ping(ctx)}}
	if out[0].err != nil {
		s.log.Error("readiness: store", "err", out[0].err)
	}
	for _, name := range slices.Sorted(maps.Keys(s.ready)) {
		err := s.ready[name](ctx)
		if err != nil {
			s.log.Warn("readiness: "+name, "err", err)
		}
		out = append(out, depCheck{name: name, err: err})
	}
	return out
}

// storeProblem says why the store failed its check, in words safe to
// show: a store's own *fednode.Error says it, a full disk is named, and
// anything else (an address, a path) stays in the log.
func storeProblem(err error) string {
	var e *fednode.Error
	switch {
	case errors.As(err, &e):
		return e.Message
	case errors.Is(err, syscall.ENOSPC):
		return "it cannot take writes: no space left on device"
	case errors.Is(err, syscall.EIO):
		return "it cannot take writes: I/O error"
	}
	return "it is not reachable"
}
