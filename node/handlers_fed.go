package node

import (
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"github.com/fednode/fednode"
	"github.com/fednode/fednode/federation"
	"github.com/fednode/fednode/keys"
)

func (s *Server) handleNodeDocument(w http.ResponseWriter, r *http.Request) {
	pubs, err := s.keyring.PublicKeys(r.Context())
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	doc := federation.BuildNodeDocument(s.cfg.NodeDomain, s.cfg.InboxScheme(), pubs)
	w.Header().Set("Content-Type", federation.DocumentMediaType)
	w.Header().Set("Cache-Control", "public, max-age=300")
	json.NewEncoder(w).Encode(doc)
}

func (s *Server) handleInbox(w http.ResponseWriter, r *http.Request) {
	resp, err := s.inbox.Receive(r.Context(), r, clientIP(r))
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	writeJSON(w, http.StatusOK, resp)
}

func (s *Server) handleGetPolicy(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.policy.get())
}

// handleSetPolicy: PUT replaces the policy, DELETE resets it to the
// configuration's.
func (s *Server) handleSetPolicy(w http.ResponseWriter, r *http.Request) {
	var p Policy
	reset := r.Method == http.MethodDelete
	if !reset {
		if err := decodeBody(w, r, &p); err != nil {
			writeError(w, r, s.log, err)
			return
		}
	}
	np, err := s.policy.set(r.Context(), p, reset)
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	who, _ := principalFromContext(r.Context())
	s.audit.WarnContext(r.Context(), "federation.policy", "by", who.Session.Username, "mode", np.Mode, "allowlist", np.Allowlist, "blocklist", np.Blocklist)
	writeJSON(w, http.StatusOK, np)
}

func (s *Server) handleDeadLetters(w http.ResponseWriter, r *http.Request) {
	limit := 100
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			writeError(w, r, s.log, fednode.FieldError(fednode.EInvalidParam, "limit", "limit must be 1 to 1000"))
			return
		}
		limit = n
	}
	dead, err := s.store.DeadLetters(r.Context(), limit)
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	type item struct {
		MessageID string `json:"message_id"`
		Peer      string `json:"peer"`
		Reason    string `json:"reason"`
		Code      string `json:"code"`
		Attempts  int    `json:"attempts"`
		FailedAt  string `json:"failed_at"`
	}
	out := struct {
		DeadLetters []item `json:"dead_letters"`
	}{DeadLetters: []item{}}
	for _, d := range dead {
		out.DeadLetters = append(out.DeadLetters, item{d.MessageID, d.Peer, d.Reason, d.Code, d.Attempts, d.FailedAt.UTC().Format(timeFormat)})
	}
	writeJSON(w, http.StatusOK, out)
}

// handleRotateKeys makes a new current key of a use; the old one stays
// published for KEY_ROTATION_OVERLAP (or "overlap" in the body).
func (s *Server) handleRotateKeys(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Use     string `json:"use" strictjson:"required"`
		Overlap string `json:"overlap"`
	}
	if err := decodeBody(w, r, &req); err != nil {
		writeError(w, r, s.log, err)
		return
	}
	if req.Use != keys.UseSig && req.Use != keys.UseEnc {
		writeError(w, r, s.log, fednode.FieldError(fednode.EInvalid, "use", "use must be sig or enc"))
		return
	}
	overlap := s.cfg.KeyRotationOverlap
	if req.Overlap != "" {
		d, err := time.ParseDuration(req.Overlap)
		if err != nil || d < 0 {
			writeError(w, r, s.log, fednode.FieldError(fednode.EInvalid, "overlap", "overlap must be a duration such as 168h"))
			return
		}
		overlap = d
	}
	id, err := s.RotateKeys(r.Context(), req.Use, overlap)
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	who, _ := principalFromContext(r.Context())
	s.audit.WarnContext(r.Context(), "keys.rotated", "by", who.Session.Username, "use", req.Use, "key", id, "overlap", overlap.String())
	writeJSON(w, http.StatusOK, map[string]string{"id": id, "use": req.Use})
}

// handleRotateJWT makes a new JWT secret version in Vault KV; tokens signed
// with the previous one are accepted for JWT_ROTATION_OVERLAP.
func (s *Server) handleRotateJWT(w http.ResponseWriter, r *http.Request) {
	vs, ok := s.secrets.(*vaultSecrets)
	if !ok {
		writeError(w, r, s.log, fednode.Errorf(fednode.EConflict, "JWT secret rotation needs JWT_SECRET_VAULT_PATH; with JWT_SECRET, change the variable and restart (every token is then refused)"))
		return
	}
	n, err := vs.rotate(r.Context())
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	who, _ := principalFromContext(r.Context())
	s.audit.WarnContext(r.Context(), "jwt.rotated", "by", who.Session.Username, "version", n, "overlap", s.cfg.JWTRotationOverlap.String())
	writeJSON(w, http.StatusOK, map[string]any{"version": n, "previous_accepted_until": s.now().Add(s.cfg.JWTRotationOverlap).UTC().Format(time.RFC3339)})
}
