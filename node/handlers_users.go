package node

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"
	"unicode/utf8"

	"github.com/gorilla/mux"

	"github.com/fednode/fednode"
)

// Users managed by the operator (docs/API.md, "Admin: users"). Every action
// is refused on an unknown user with 404 not_found, and written to the
// audit stream with the acting admin as "by". An admin cannot suspend or
// delete themselves, and the last active admin cannot lose the role (409
// conflict): a node is never left without an admin who can log in.

// maxSuspendReason bounds the reason an admin gives, in code points.
const maxSuspendReason = 500

// userJSON is a user as the admin API shows it.
type userJSON struct {
	Username      string `json:"username"`
	Address       string `json:"address"`
	Role          string `json:"role"`
	CreatedAt     string `json:"created_at"`
	Suspended     bool   `json:"suspended"`
	SuspendedAt   string `json:"suspended_at,omitempty"`
	SuspendedBy   string `json:"suspended_by,omitempty"`
	SuspendReason string `json:"suspend_reason,omitempty"`
	Locked        bool   `json:"locked"`
	LockedUntil   string `json:"locked_until,omitempty"`
}

// userView shows u with its lockout, read from its login failures.
func (s *Server) userView(ctx context.Context, u fednode.User) (userJSON, error) {
	name := fednode.CanonicalUsername(u.Username)
	j := userJSON{Username: u.Username, Address: fednode.Address{User: name, Domain: s.cfg.NodeDomain}.String(), Role: u.Role,
		CreatedAt: u.CreatedAt.UTC().Format(time.RFC3339), Suspended: u.Suspended(), SuspendedBy: u.SuspendedBy, SuspendReason: u.SuspendReason}
	if u.Suspended() {
		j.SuspendedAt = u.SuspendedAt.UTC().Format(time.RFC3339)
	}
	now := s.now()
	failures, err := s.store.LoginFailures(ctx, name, now.Add(-s.accounts.window))
	if err != nil {
		return userJSON{}, fmt.Errorf("user %s: login failures: %w", name, err)
	}
	if d := s.accounts.lockedFor(failures, now); d > 0 {
		j.Locked, j.LockedUntil = true, now.Add(d).UTC().Format(time.RFC3339)
	}
	return j, nil
}

// adminAct is one request's acting admin and target user, read from the
// path; the target is answered 404 when it does not exist.
type adminAct struct {
	by, ip string
	name   string // the target's canonical name
	user   fednode.User
}

func (s *Server) adminAct(w http.ResponseWriter, r *http.Request) (adminAct, bool) {
	a, err := s.adminTarget(r)
	if err == nil {
		a.user, err = s.store.User(r.Context(), a.name)
	}
	if errors.Is(err, fednode.ErrNotFound) {
		err = noSuchUser(a.name)
	}
	if err != nil {
		writeError(w, r, s.log, err)
		return a, false
	}
	return a, true
}

// adminTarget reads the acting admin and the target's name, without
// looking the target up.
func (s *Server) adminTarget(r *http.Request) (adminAct, error) {
	p, _ := principalFromContext(r.Context())
	a := adminAct{by: p.Session.Username, ip: clientIP(r), name: fednode.CanonicalUsername(mux.Vars(r)["username"])}
	if !fednode.ValidUsername(a.name) {
		return a, noSuchUser(a.name)
	}
	return a, nil
}

func noSuchUser(name string) error {
	return fednode.Errorf(fednode.ENotFound, "there is no user %s", name)
}

// writeUser answers the user as it is now.
func (s *Server) writeUser(w http.ResponseWriter, r *http.Request, u fednode.User) {
	j, err := s.userView(r.Context(), u)
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	writeJSON(w, http.StatusOK, j)
}

// queryName reads an optional query parameter that must be of the username
// alphabet.
func queryName(r *http.Request, name string) (string, error) {
	v := r.URL.Query().Get(name)
	if v != "" && !fednode.ValidUsername(v) {
		return "", fednode.FieldError(fednode.EInvalidParam, name, "%s must be 1 to 64 letters, digits, '_' or '-'", name)
	}
	return v, nil
}

// handleUsers lists users: GET /api/admin/users?after=&prefix=&q=&role=&limit=.
func (s *Server) handleUsers(w http.ResponseWriter, r *http.Request) {
	q := fednode.UserQuery{Limit: defaultPageSize}
	var err error
	for name, dst := range map[string]*string{"after": &q.After, "prefix": &q.Prefix, "q": &q.Contains} {
		if *dst, err = queryName(r, name); err != nil {
			writeError(w, r, s.log, err)
			return
		}
	}
	switch q.Role = r.URL.Query().Get("role"); q.Role {
	case "", fednode.RoleUser, fednode.RoleAdmin:
	default:
		writeError(w, r, s.log, fednode.FieldError(fednode.EInvalidParam, "role", "role must be user or admin"))
		return
	}
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := parseLimit(v)
		if err != nil {
			writeError(w, r, s.log, err)
			return
		}
		q.Limit = n
	}
	users, err := s.store.Users(r.Context(), q)
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	out := struct {
		Users []userJSON `json:"users"`
		Next  string     `json:"next"` // the after of the next page; "" when this page is the last
	}{Users: make([]userJSON, 0, len(users))}
	for _, u := range users {
		j, err := s.userView(r.Context(), u)
		if err != nil {
			writeError(w, r, s.log, err)
			return
		}
		out.Users = append(out.Users, j)
	}
	if len(users) == q.Limit {
		out.Next = fednode.CanonicalUsername(users[len(users)-1].Username)
	}
	writeJSON(w, http.StatusOK, out)
}

// handleUser shows one user: GET /api/admin/users/{username}.
func (s *Server) handleUser(w http.ResponseWriter, r *http.Request) {
	if a, ok := s.adminAct(w, r); ok {
		s.writeUser(w, r, a.user)
	}
}

// handleSuspend suspends a user: POST /api/admin/users/{username}/suspend
// with an optional {"reason"}. The user's sessions are revoked and their
// sockets closed on every replica at once.
func (s *Server) handleSuspend(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Reason string `json:"reason"`
	}
	if r.ContentLength != 0 {
		if err := decodeBody(w, r, &req); err != nil {
			writeError(w, r, s.log, err)
			return
		}
	}
	if utf8.RuneCountInString(req.Reason) > maxSuspendReason {
		writeError(w, r, s.log, fednode.FieldError(fednode.EInvalid, "reason", "reason must be at most %d characters", maxSuspendReason))
		return
	}
	a, ok := s.adminAct(w, r)
	if !ok {
		return
	}
	if a.name == a.by {
		writeError(w, r, s.log, fednode.Errorf(fednode.EConflict, "an admin cannot suspend themselves"))
		return
	}
	now := s.now().UTC()
	u, err := s.updateUser(r.Context(), a.name, func(u *fednode.User) {
		u.SuspendedAt, u.SuspendedBy, u.SuspendReason = now, a.by, req.Reason
	})
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	ids, err := s.store.DeleteUserSessions(r.Context(), a.name)
	if err != nil {
		writeError(w, r, s.log, fmt.Errorf("suspend %s: revoke sessions: %w", a.name, err))
		return
	}
	s.revoked(ids)
	s.audit.WarnContext(r.Context(), "user.suspended", "user", a.name, "by", a.by, "ip", a.ip, "reason", req.Reason, "sessions_revoked", len(ids))
	s.writeUser(w, r, u)
}

// handleUnsuspend lifts a suspension: POST /api/admin/users/{username}/unsuspend.
func (s *Server) handleUnsuspend(w http.ResponseWriter, r *http.Request) {
	a, ok := s.adminAct(w, r)
	if !ok {
		return
	}
	u, err := s.updateUser(r.Context(), a.name, func(u *fednode.User) {
		u.SuspendedAt, u.SuspendedBy, u.SuspendReason = time.Time{}, "", ""
	})
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	s.audit.WarnContext(r.Context(), "user.unsuspended", "user", a.name, "by", a.by, "ip", a.ip)
	s.writeUser(w, r, u)
}

// handleDeleteUser deletes a user, their sessions and mailbox, and the
// messages only they hold; the name stays reserved for good:
// DELETE /api/admin/users/{username}.
// The store is asked even for a name with no account: on Redis, that
// finishes a deletion that was interrupted (and still answers 404).
func (s *Server) handleDeleteUser(w http.ResponseWriter, r *http.Request) {
	a, err := s.adminTarget(r)
	if err == nil && a.name == a.by {
		err = fednode.Errorf(fednode.EConflict, "an admin cannot delete themselves")
	}
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	del, err := s.store.DeleteUser(r.Context(), fednode.DeletedUser{Username: a.name, DeletedAt: s.now().UTC(), By: a.by}, s.cfg.NodeDomain)
	if errors.Is(err, fednode.ErrNotFound) {
		err = noSuchUser(a.name)
	}
	s.revoked(del.Sessions) // what was revoked, even when the messages failed
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	s.audit.WarnContext(r.Context(), "user.deleted", "user", a.name, "by", a.by, "ip", a.ip, "sessions_revoked", len(del.Sessions), "messages_deleted", del.Messages)
	writeJSON(w, http.StatusOK, map[string]any{"username": a.name, "sessions_revoked": len(del.Sessions), "messages_deleted": del.Messages})
}

// handleUnlock lifts a login lockout: POST /api/admin/users/{username}/unlock.
func (s *Server) handleUnlock(w http.ResponseWriter, r *http.Request) {
	a, ok := s.adminAct(w, r)
	if !ok {
		return
	}
	if err := s.store.ClearLoginFailures(r.Context(), a.name); err != nil {
		writeError(w, r, s.log, fmt.Errorf("unlock %s: %w", a.name, err))
		return
	}
	s.audit.WarnContext(r.Context(), "user.unlocked", "user", a.name, "by", a.by, "ip", a.ip)
	s.writeUser(w, r, a.user)
}

// handleRole grants or removes the admin role: PUT
// /api/admin/users/{username}/role with {"role":"admin"|"user"}. It takes
// effect at once on every replica that the change's event reaches.
func (s *Server) handleRole(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Role string `json:"role" strictjson:"required"`
	}
	if err := decodeBody(w, r, &req); err != nil {
		writeError(w, r, s.log, err)
		return
	}
	if req.Role != fednode.RoleAdmin && req.Role != fednode.RoleUser {
		writeError(w, r, s.log, fednode.FieldError(fednode.EInvalid, "role", "role must be admin or user"))
		return
	}
	a, ok := s.adminAct(w, r)
	if !ok {
		return
	}
	if a.user.Role == fednode.RoleAdmin && req.Role != fednode.RoleAdmin {
		others, err := s.otherActiveAdmin(r.Context(), a.name)
		if err != nil {
			writeError(w, r, s.log, err)
			return
		}
		if !others {
			writeError(w, r, s.log, fednode.Errorf(fednode.EConflict, "%s is the last active admin; grant the role to another user first", a.name))
			return
		}
	}
	u, err := s.updateUser(r.Context(), a.name, func(u *fednode.User) { u.Role = req.Role })
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	if a.user.Role != req.Role {
		event := "user.role_granted"
		if req.Role != fednode.RoleAdmin {
			event = "user.role_removed"
		}
		s.audit.WarnContext(r.Context(), event, "user", a.name, "role", fednode.RoleAdmin, "by", a.by, "ip", a.ip)
	}
	s.writeUser(w, r, u)
}

// otherActiveAdmin reports whether a user other than name has the admin
// role and is not suspended.
func (s *Server) otherActiveAdmin(ctx context.Context, name string) (bool, error) {
	q := fednode.UserQuery{Role: fednode.RoleAdmin, Limit: maxPageSize}
	for {
		admins, err := s.store.Users(ctx, q)
		if err != nil {
			return false, fmt.Errorf("count admins: %w", err)
		}
		for _, u := range admins {
			if fednode.CanonicalUsername(u.Username) != name && !u.Suspended() {
				return true, nil
			}
		}
		if len(admins) < q.Limit {
			return false, nil
		}
		q.After = fednode.CanonicalUsername(admins[len(admins)-1].Username)
	}
}

// updateUser applies fn to a user and returns it as stored, then tells
// every replica to forget the user's cached tokens, so that the change
// (a role, a suspension) is served from the store at once.
func (s *Server) updateUser(ctx context.Context, name string, fn func(*fednode.User)) (fednode.User, error) {
	var out fednode.User
	err := s.store.UpdateUser(ctx, name, func(u *fednode.User) error {
		fn(u)
		out = *u
		return nil
	})
	if errors.Is(err, fednode.ErrNotFound) {
		return out, noSuchUser(name) // deleted meanwhile
	} else if err != nil {
		return out, fmt.Errorf("update user %s: %w", name, err)
	}
	s.accounts.cache.forgetUsers([]string{name}) // here at once, whatever the broker does
	if err := s.broker.Publish(s.bgCtx, TopicUsers, []string{name}); err != nil {
		s.log.Warn("broker: users", "err", err)
	}
	return out, nil
}
