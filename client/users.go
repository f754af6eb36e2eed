package client

import (
	"context"
	"net/url"
	"strconv"
)

// User is a user as the admin API shows it.
type User struct {
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

// UserQuery selects a page of users; its zero value is the first page of
// everyone.
type UserQuery struct {
	After  string // Next of the previous page
	Prefix string // names that start with it
	Q      string // names that contain it
	Role   string // "admin" or "user"
	Limit  int    // 1 to 200; 0 means the node's default (50)
}

// UserPage is one page of users; Next is "" on the last.
type UserPage struct {
	Users []User `json:"users"`
	Next  string `json:"next"`
}

// UserDeletion is what deleting a user removed.
type UserDeletion struct {
	Username        string `json:"username"`
	SessionsRevoked int    `json:"sessions_revoked"`
	MessagesDeleted int    `json:"messages_deleted"`
}

func userPath(name string) string { return "/api/admin/users/" + url.PathEscape(name) }

// Users lists a page of users (admin).
func (c *Client) Users(ctx context.Context, q UserQuery) (UserPage, error) {
	v := url.Values{}
	for k, s := range map[string]string{"after": q.After, "prefix": q.Prefix, "q": q.Q, "role": q.Role} {
		if s != "" {
			v.Set(k, s)
		}
	}
	if q.Limit > 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	path := "/api/admin/users"
	if len(v) > 0 {
		path += "?" + v.Encode()
	}
	var p UserPage
	err := c.do(ctx, "GET", path, nil, &p)
	return p, err
}

// User shows one user (admin).
func (c *Client) User(ctx context.Context, name string) (User, error) {
	var u User
	err := c.do(ctx, "GET", userPath(name), nil, &u)
	return u, err
}

// Suspend suspends a user, revoking their sessions (admin).
func (c *Client) Suspend(ctx context.Context, name, reason string) (User, error) {
	var u User
	err := c.do(ctx, "POST", userPath(name)+"/suspend", map[string]string{"reason": reason}, &u)
	return u, err
}

// Unsuspend lifts a suspension (admin).
func (c *Client) Unsuspend(ctx context.Context, name string) (User, error) {
	var u User
	err := c.do(ctx, "POST", userPath(name)+"/unsuspend", nil, &u)
	return u, err
}

// Unlock lifts a login lockout (admin).
func (c *Client) Unlock(ctx context.Context, name string) (User, error) {
	var u User
	err := c.do(ctx, "POST", userPath(name)+"/unlock", nil, &u)
	return u, err
}

// SetRole grants ("admin") or removes ("user") the admin role (admin).
func (c *Client) SetRole(ctx context.Context, name, role string) (User, error) {
	var u User
	err := c.do(ctx, "PUT", userPath(name)+"/role", map[string]string{"role": role}, &u)
	return u, err
}

// DeleteUser deletes a user and the messages only they hold; the name stays
// reserved (admin).
func (c *Client) DeleteUser(ctx context.Context, name string) (UserDeletion, error) {
	var d UserDeletion
	err := c.do(ctx, "DELETE", userPath(name), nil, &d)
	return d, err
}
