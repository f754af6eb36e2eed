package node

import (
	"net/http"
	"time"

	"github.com/fednode/fednode"
)

type credentials struct {
	Username  string `json:"username" strictjson:"required"`
	Password  string `json:"password" strictjson:"required"`
	Challenge string `json:"challenge"` // a proof-of-work solution, when one is asked for
}

func (s *Server) handleRegister(w http.ResponseWriter, r *http.Request) {
	var req registration
	if err := decodeBody(w, r, &req); err != nil {
		writeError(w, r, s.log, err)
		return
	}
	if err := s.accounts.register(r.Context(), req, clientIP(r)); err != nil {
		if fednode.ErrorCode(err) == fednode.EChallengeInvalid {
			s.abuse.violation(r.Context(), violationAuth, clientFromContext(r.Context()))
		}
		writeError(w, r, s.log, err)
		return
	}
	writeJSON(w, http.StatusCreated, map[string]string{
		"username": req.Username,
		"address":  fednode.Address{User: fednode.CanonicalUsername(req.Username), Domain: s.cfg.NodeDomain}.String(),
	})
}

func (s *Server) handleLogin(w http.ResponseWriter, r *http.Request) {
	var req credentials
	if err := decodeBody(w, r, &req); err != nil {
		writeError(w, r, s.log, err)
		return
	}
	tok, exp, err := s.accounts.login(r.Context(), req.Username, req.Password, clientIP(r), loginProof{req.Challenge})
	if err != nil {
		if code := fednode.ErrorCode(err); code == fednode.ECredentials || code == fednode.ELocked || code == fednode.EChallengeInvalid {
			s.metrics.authEvents.WithLabelValues(code).Inc()
			s.abuse.violation(r.Context(), violationAuth, clientFromContext(r.Context()))
		}
		writeError(w, r, s.log, err)
		return
	}
	s.metrics.authEvents.WithLabelValues("login").Inc()
	writeJSON(w, http.StatusOK, map[string]string{"token": tok, "expires_at": exp.UTC().Format(time.RFC3339)})
}

func (s *Server) handleLogout(w http.ResponseWriter, r *http.Request) {
	p, _ := principalFromContext(r.Context())
	if err := s.accounts.logout(r.Context(), p.Session, clientIP(r)); err != nil {
		writeError(w, r, s.log, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) handlePassword(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Current string `json:"current_password" strictjson:"required"`
		New     string `json:"new_password" strictjson:"required"`
	}
	if err := decodeBody(w, r, &req); err != nil {
		writeError(w, r, s.log, err)
		return
	}
	p, _ := principalFromContext(r.Context())
	if err := s.accounts.changePassword(r.Context(), p.Session, req.Current, req.New, clientIP(r)); err != nil {
		writeError(w, r, s.log, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) handleMe(w http.ResponseWriter, r *http.Request) {
	p, _ := principalFromContext(r.Context())
	writeJSON(w, http.StatusOK, map[string]string{
		"username":   p.User.Username,
		"address":    fednode.Address{User: p.Session.Username, Domain: s.cfg.NodeDomain}.String(),
		"role":       p.User.Role,
		"session":    p.Session.ID,
		"expires_at": p.Session.ExpiresAt.UTC().Format(time.RFC3339),
	})
}

func (s *Server) handleRevokeAll(w http.ResponseWriter, r *http.Request) {
	p, _ := principalFromContext(r.Context())
	n, err := s.accounts.revokeAll(r.Context(), p.Session.Username, clientIP(r))
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]int{"revoked": n})
}
