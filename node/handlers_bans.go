package node

import (
	"net/http"
	"time"

	"github.com/fednode/fednode"
	"github.com/fednode/fednode/clientip"
)

type banJSON struct {
	Key       string `json:"key"`
	Until     string `json:"until"`
	Reason    string `json:"reason"`
	Level     int    `json:"level"`
	CreatedAt string `json:"created_at"`
	Active    bool   `json:"active"`
}

func (s *Server) banJSON(b fednode.Ban) banJSON {
	return banJSON{Key: b.Key, Until: b.Until.UTC().Format(time.RFC3339), Reason: b.Reason, Level: b.Level,
		CreatedAt: b.CreatedAt.UTC().Format(time.RFC3339), Active: b.Active(s.now())}
}

// handleBans lists the bans in force (and recent ones, with their level).
func (s *Server) handleBans(w http.ResponseWriter, r *http.Request) {
	all, err := s.store.Bans(r.Context())
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	out := struct {
		Bans []banJSON `json:"bans"`
	}{Bans: []banJSON{}}
	for _, b := range all {
		out.Bans = append(out.Bans, s.banJSON(b))
	}
	writeJSON(w, http.StatusOK, out)
}

// handleBan bans a client key by hand: {"key","duration","reason"}.
func (s *Server) handleBan(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Key      string `json:"key" strictjson:"required"`
		Duration string `json:"duration"`
		Reason   string `json:"reason"`
	}
	if err := decodeBody(w, r, &req); err != nil {
		writeError(w, r, s.log, err)
		return
	}
	key, err := clientip.ParseKey(req.Key)
	if err != nil {
		writeError(w, r, s.log, fednode.FieldError(fednode.EInvalid, "key", "key must be an IP address or an IPv6 /64"))
		return
	}
	var d time.Duration
	if req.Duration != "" {
		if d, err = time.ParseDuration(req.Duration); err != nil || d <= 0 || d > 365*24*time.Hour {
			writeError(w, r, s.log, fednode.FieldError(fednode.EInvalid, "duration", "duration must be a positive duration such as 1h, at most a year"))
			return
		}
	}
	if req.Reason == "" {
		req.Reason = "manual"
	}
	who, _ := principalFromContext(r.Context())
	b, err := s.abuse.ban(r.Context(), key, req.Reason, d, who.Session.Username)
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	writeJSON(w, http.StatusCreated, s.banJSON(b))
}

// handleUnban lifts a ban: DELETE /api/admin/bans?key=K.
func (s *Server) handleUnban(w http.ResponseWriter, r *http.Request) {
	key, err := clientip.ParseKey(r.URL.Query().Get("key"))
	if err != nil {
		writeError(w, r, s.log, fednode.FieldError(fednode.EInvalidParam, "key", "key must be an IP address or an IPv6 /64"))
		return
	}
	who, _ := principalFromContext(r.Context())
	if err := s.abuse.unban(r.Context(), key, who.Session.Username); err != nil {
		writeError(w, r, s.log, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
