package node

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/gorilla/mux"

	"github.com/fednode/fednode"
)

// Registration modes (REGISTRATION_MODE).
const (
	RegistrationOpen   = "open"   // anyone may register
	RegistrationInvite = "invite" // registration needs an admin-issued, single-use invite code
	RegistrationClosed = "closed" // nobody may register; admins make accounts offline
)

// Invite limits: how many one request may make, and how long one may live.
const (
	maxInvitesPerRequest = 100
	DefaultInviteTTL     = 7 * 24 * time.Hour // an invite's lifetime when none is asked for
	maxInviteTTL         = 90 * 24 * time.Hour
	// inviteKeep is how long an expired invite (used or not) stays listed
	// before the janitor forgets it.
	inviteKeep = 7 * 24 * time.Hour
)

// inviteStore is what invites need from a store.
type inviteStore interface {
	CreateInvite(ctx context.Context, inv fednode.Invite) error
	Invites(ctx context.Context) ([]fednode.Invite, error)
	DeleteInvite(ctx context.Context, code string) error
	CreateUserWithInvite(ctx context.Context, u fednode.User, code string, now time.Time) error
}

// registration is what POST /api/auth/register takes.
type registration struct {
	Username  string `json:"username" strictjson:"required"`
	Password  string `json:"password" strictjson:"required"`
	Invite    string `json:"invite"`    // REGISTRATION_MODE=invite; ignored in open mode
	Challenge string `json:"challenge"` // a proof-of-work solution, when one is asked for
}

// signup decides who may register: the mode, the invite, the challenge.
type signup struct {
	mode    string
	invites inviteStore
	audit   *slog.Logger
}

// admit refuses a registration the mode does not allow, before anything
// is checked or hashed.
func (g *signup) admit(req registration) error {
	switch {
	case g.mode == RegistrationClosed:
		return fednode.Errorf(fednode.ERegistrationClosed, "registration is closed on this node; ask its operator for an account")
	case g.mode == RegistrationInvite && req.Invite == "":
		return fednode.FieldError(fednode.EInviteRequired, "invite", "registration on this node needs an invite code from its operator")
	}
	return nil
}

// create stores u, using the invite in invite mode in the same step.
// Nothing is lost if either fails: the store writes both or neither.
func (g *signup) create(ctx context.Context, store authStore, u fednode.User, invite, ip string, now time.Time) error {
	if g.mode != RegistrationInvite {
		return store.CreateUser(ctx, u)
	}
	code := strings.ToLower(strings.TrimSpace(invite))
	if !validInviteCode(code) {
		return fednode.ErrInviteUnknown
	}
	if err := g.invites.CreateUserWithInvite(ctx, u, code, now); err != nil {
		return err
	}
	g.audit.InfoContext(ctx, "invite.used", "invite", code, "user", fednode.CanonicalUsername(u.Username), "ip", ip)
	return nil
}

// inviteEncoding writes 16 random bytes as 26 characters of a-z and 2-7:
// easy to read out, type and put in a URL.
var inviteEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

// NewInviteCode returns a fresh random invite code (also for the offline
// `fednode admin invite`).
func NewInviteCode() string {
	var b [16]byte
	rand.Read(b[:])
	return strings.ToLower(inviteEncoding.EncodeToString(b[:]))
}

func validInviteCode(code string) bool {
	if len(code) != 26 {
		return false
	}
	for i := 0; i < len(code); i++ {
		if c := code[i]; !('a' <= c && c <= 'z' || '2' <= c && c <= '7') {
			return false
		}
	}
	return true
}

// inviteJSON is an invite as the admin API shows it.
type inviteJSON struct {
	Code      string `json:"code"`
	State     string `json:"state"` // unused | used | expired
	CreatedBy string `json:"created_by"`
	CreatedAt string `json:"created_at"`
	ExpiresAt string `json:"expires_at"`
	UsedBy    string `json:"used_by,omitempty"`
	UsedAt    string `json:"used_at,omitempty"`
}

func toInviteJSON(inv fednode.Invite, now time.Time) inviteJSON {
	j := inviteJSON{Code: inv.Code, State: "unused", CreatedBy: inv.CreatedBy,
		CreatedAt: inv.CreatedAt.UTC().Format(time.RFC3339), ExpiresAt: inv.ExpiresAt.UTC().Format(time.RFC3339)}
	switch {
	case inv.Used():
		j.State, j.UsedBy, j.UsedAt = "used", inv.UsedBy, inv.UsedAt.UTC().Format(time.RFC3339)
	case inv.Expired(now):
		j.State = "expired"
	}
	return j
}

// NewInvite makes a single-use invite issued by by at now, valid for ttl:
// the one rule for invites made through the admin API and offline
// (fednode admin invite). ttl must be from 1 minute to 90 days.
func NewInvite(by string, now time.Time, ttl time.Duration) (fednode.Invite, error) {
	if ttl < time.Minute || ttl > maxInviteTTL {
		return fednode.Invite{}, inviteTTLError()
	}
	now = now.UTC()
	return fednode.Invite{Code: NewInviteCode(), CreatedBy: by, CreatedAt: now, ExpiresAt: now.Add(ttl).Truncate(time.Second)}, nil
}

func inviteTTLError() error {
	return fednode.FieldError(fednode.EInvalid, "expires_in", "expires_in must be a duration from 1m to %s, such as 72h", maxInviteTTL)
}

func (s *Server) handleCreateInvites(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Count     *int   `json:"count"`
		ExpiresIn string `json:"expires_in"`
	}
	if err := decodeBody(w, r, &req); err != nil {
		writeError(w, r, s.log, err)
		return
	}
	count, ttl := 1, DefaultInviteTTL
	if req.Count != nil {
		count = *req.Count
	}
	if count < 1 || count > maxInvitesPerRequest {
		writeError(w, r, s.log, fednode.FieldError(fednode.EInvalid, "count", "count must be 1 to %d", maxInvitesPerRequest))
		return
	}
	if req.ExpiresIn != "" {
		d, err := time.ParseDuration(req.ExpiresIn)
		if err != nil {
			writeError(w, r, s.log, inviteTTLError())
			return
		}
		ttl = d
	}
	p, _ := principalFromContext(r.Context())
	now := s.now().UTC()
	out := make([]inviteJSON, 0, count)
	for range count {
		inv, err := NewInvite(p.Session.Username, now, ttl)
		if err != nil {
			writeError(w, r, s.log, err)
			return
		}
		if err := s.store.CreateInvite(r.Context(), inv); err != nil {
			writeError(w, r, s.log, fmt.Errorf("create invite: %w", err))
			return
		}
		s.audit.InfoContext(r.Context(), "invite.created", "invite", inv.Code, "by", p.Session.Username, "ip", clientIP(r), "expires_at", inv.ExpiresAt)
		out = append(out, toInviteJSON(inv, now))
	}
	writeJSON(w, http.StatusCreated, map[string]any{"invites": out})
}

func (s *Server) handleInvites(w http.ResponseWriter, r *http.Request) {
	all, err := s.store.Invites(r.Context())
	if err != nil {
		writeError(w, r, s.log, fmt.Errorf("invites: %w", err))
		return
	}
	now := s.now()
	out := make([]inviteJSON, 0, len(all))
	for _, inv := range all {
		out = append(out, toInviteJSON(inv, now))
	}
	writeJSON(w, http.StatusOK, map[string]any{"invites": out})
}

func (s *Server) handleRevokeInvite(w http.ResponseWriter, r *http.Request) {
	code := mux.Vars(r)["code"]
	err := s.store.DeleteInvite(r.Context(), code)
	if errors.Is(err, fednode.ErrNotFound) {
		writeError(w, r, s.log, fednode.Errorf(fednode.ENotFound, "no such invite"))
		return
	} else if err != nil {
		writeError(w, r, s.log, fmt.Errorf("revoke invite: %w", err))
		return
	}
	p, _ := principalFromContext(r.Context())
	s.audit.WarnContext(r.Context(), "invite.revoked", "invite", code, "by", p.Session.Username, "ip", clientIP(r))
	w.WriteHeader(http.StatusNoContent)
}
