package client

// Identity, user, ACL, role and audit operations
// (security-and-advanced.md §§4–7). Requests are encoded exactly as the
// upstream Go client encodes them, so a broker sees the same bytes from
// either client; replies are decoded in the layouts the spec requires.

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/flymq/flymq/internal/protocol"
)

// Reply types of the security operations, aliased from the protocol
// package so that callers can name them.
type (
	// Identity is the WHOAMI reply: whether the connection is
	// authenticated, as whom, and the user's effective permissions
	// (the broker sends no role names here, only permissions).
	Identity = protocol.IdentityResponse
	// UserInfo is one user: roles, effective permissions, enabled flag
	// and creation/update times in Unix seconds.
	UserInfo = protocol.UserInfo
	// ACLInfo is the ACL_GET reply for one topic; Exists is false when
	// the topic has no entry (DefaultPublic then decides).
	ACLInfo = protocol.ACLInfo
	// ACLEntry is one topic's entry in an ACL list.
	ACLEntry = protocol.ACLEntry
	// ACLList is the ACL_LIST reply: every entry and the server's
	// default_public setting.
	ACLList = protocol.ACLList
	// RoleInfo is one role: its permissions and description.
	RoleInfo = protocol.RoleInfo
	// AuditEvent is one audit trail event; Timestamp is Unix ms.
	AuditEvent = protocol.AuditEvent
	// AuditDetail is one key/value pair of an AuditEvent.
	AuditDetail = protocol.AuditDetail
)

// ErrNoChange is returned by UpdateUser when it is given neither roles
// nor an enabled flag: such a request changes nothing, and the broker
// would refuse it as malformed.
var ErrNoChange = errors.New("client: update names no change")

// AuditFilter selects audit events. Zero values mean "any": a zero Start
// or End leaves that side open (the wire carries whole seconds), empty
// strings match everything. Resource and Search match substrings
// (Search case-insensitively over action, resource and details); the
// others match exactly. Limit <= 0 means the broker's default of 100.
type AuditFilter struct {
	Start, End time.Time
	EventTypes []string
	User       string
	Resource   string
	Result     string
	Search     string
	Limit      int
	Offset     int
}

// AuditResult is one page of an audit query, newest first.
type AuditResult struct {
	Events []AuditEvent
	// TotalCount counts every match, not only this page.
	TotalCount int
	// HasMore says that matches follow this page.
	HasMore bool
}

// Authenticate sends AUTH on the open connection and, on success, makes
// it act as user (switching from any earlier identity) and returns the
// user's roles. Later reconnects authenticate with these credentials.
//
// A refused login returns an error wrapping ErrAuthFailed whose text ends
// with the broker's reason ("invalid username or password", "user account
// is disabled", "too many failed attempts, try again later"); the broker
// has then made the connection anonymous (or the user its client
// certificate maps to), and reconnects send no AUTH.
func (c *Client) Authenticate(user, password string) ([]string, error) {
	if len(user) > protocol.MaxStr16 || len(password) > protocol.MaxStr16 {
		return nil, fmt.Errorf("auth: %w", ErrTooLong)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, ErrClosed
	}
	if c.conn == nil {
		// Dial anonymously: the old credentials may no longer be valid
		// and are about to be replaced anyway.
		opts := c.opts
		opts.Username, opts.Password = "", ""
		conn, err := DialConn(context.Background(), c.addr, opts)
		if err != nil {
			return nil, fmt.Errorf("reconnect: %w", err)
		}
		c.conn = conn
	}
	if t := c.opts.RequestTimeout; t > 0 {
		_ = c.conn.SetDeadline(time.Now().Add(t))
	}
	req := protocol.AuthRequest{Username: user, Password: password}
	h, p, err := c.conn.roundTrip(protocol.OpAuth, req.AppendTo(nil))
	var se *ServerError
	if err != nil && !errors.As(err, &se) {
		c.conn.Close()
		c.conn = nil
		return nil, fmt.Errorf("auth: %w", err)
	}
	if c.opts.RequestTimeout > 0 {
		_ = c.conn.SetDeadline(time.Time{})
	}
	if err != nil {
		return nil, err
	}
	if h.Op != protocol.OpAuthResponse {
		return nil, fmt.Errorf("auth: %w: opcode %v", ErrUnexpectedResponse, h.Op)
	}
	var resp protocol.AuthResponse
	if err := resp.Decode(p); err != nil {
		return nil, fmt.Errorf("auth: %w: %w", ErrUnexpectedResponse, err)
	}
	if !resp.Success {
		c.opts.Username, c.opts.Password = "", ""
		return nil, fmt.Errorf("%w: %s", ErrAuthFailed, resp.Error)
	}
	c.opts.Username, c.opts.Password = user, password
	return resp.Roles, nil
}

// WhoAmI returns the connection's identity. It never fails on the broker
// side: an anonymous connection (or any connection to a broker without
// authentication) reads as not authenticated.
func (c *Client) WhoAmI() (Identity, error) {
	var resp Identity
	err := c.call(protocol.OpWhoAmI, noPayload, &resp)
	return resp, err
}

// CreateUser creates an enabled user with the given roles (built-in:
// admin, producer, consumer, guest). Admin only.
func (c *Client) CreateUser(name, password string, roles []string) error {
	if err := checkNames(append([]string{name, password}, roles...)...); err != nil {
		return fmt.Errorf("create user: %w", err)
	}
	// The upstream Go client sends enabled=1; the broker ignores it.
	req := protocol.UserRequest{Username: name, Password: password, Roles: roles,
		Enabled: true, HasEnabled: true}
	return c.call(protocol.OpUserCreate, req.AppendTo, &protocol.UserInfo{})
}

// DeleteUser deletes a user; its open sessions lose access at once.
// Admin only; an admin cannot delete their own account.
func (c *Client) DeleteUser(name string) error {
	if err := checkNames(name); err != nil {
		return fmt.Errorf("delete user: %w", err)
	}
	req := protocol.NameRequest{Name: name}
	return c.call(protocol.OpUserDelete, req.AppendTo, &protocol.UserAck{})
}

// UpdateUser changes a user's roles and/or enabled flag. An empty roles
// list leaves the roles as they are (assign "guest" to take every
// permission away); a nil enabled leaves the flag as it is. Admin only.
func (c *Client) UpdateUser(name string, roles []string, enabled *bool) error {
	if len(roles) == 0 && enabled == nil {
		return fmt.Errorf("update user: %w", ErrNoChange)
	}
	if err := checkNames(append([]string{name}, roles...)...); err != nil {
		return fmt.Errorf("update user: %w", err)
	}
	req := protocol.UserRequest{Username: name, Roles: roles}
	if enabled != nil {
		req.Enabled, req.HasEnabled = *enabled, true
	}
	return c.call(protocol.OpUserUpdate, req.AppendTo, &protocol.UserAck{})
}

// ListUsers returns every user, sorted by name. Admin only.
func (c *Client) ListUsers() ([]UserInfo, error) {
	var resp protocol.UserList
	if err := c.call(protocol.OpUserList, noPayload, &resp); err != nil {
		return nil, err
	}
	return resp.Users, nil
}

// GetUser returns one user with its effective permissions. Admin only.
func (c *Client) GetUser(name string) (UserInfo, error) {
	var resp UserInfo
	if err := checkNames(name); err != nil {
		return resp, fmt.Errorf("get user: %w", err)
	}
	req := protocol.NameRequest{Name: name}
	err := c.call(protocol.OpUserGet, req.AppendTo, &resp)
	return resp, err
}

// ChangePassword sets name's password to newPassword. Changing one's own
// password needs the current one in oldPassword; an admin changing
// someone else's may leave it empty. Other sessions stay logged in.
func (c *Client) ChangePassword(name, oldPassword, newPassword string) error {
	if err := checkNames(name, oldPassword, newPassword); err != nil {
		return fmt.Errorf("change password: %w", err)
	}
	// As the upstream Go client: no roles, enabled byte 0 (ignored).
	req := protocol.UserRequest{Username: name, Password: newPassword, OldPassword: oldPassword,
		HasEnabled: true}
	return c.call(protocol.OpPasswordChange, req.AppendTo, &protocol.UserAck{})
}

// SetACL replaces topic's access list. Listed users and holders of listed
// roles may read and write the topic; public opens it to every
// authenticated user (and to anonymous ones when the broker allows
// anonymous access, which it must for public to be accepted). Role
// permissions still apply on top: ACLs only add access. Admin only.
func (c *Client) SetACL(topic string, public bool, users, roles []string) error {
	if err := checkNames(append(append([]string{topic}, users...), roles...)...); err != nil {
		return fmt.Errorf("set acl: %w", err)
	}
	req := protocol.ACLSetRequest{Topic: topic, Public: public, AllowedUsers: users, AllowedRoles: roles}
	return c.call(protocol.OpACLSet, req.AppendTo, &protocol.UserAck{})
}

// GetACL returns topic's access list (Exists false when it has none).
// Admin only.
func (c *Client) GetACL(topic string) (ACLInfo, error) {
	var resp ACLInfo
	if err := checkNames(topic); err != nil {
		return resp, fmt.Errorf("get acl: %w", err)
	}
	req := protocol.NameRequest{Name: topic}
	err := c.call(protocol.OpACLGet, req.AppendTo, &resp)
	return resp, err
}

// DeleteACL removes topic's access list; a topic without one is not an
// error. Admin only.
func (c *Client) DeleteACL(topic string) error {
	if err := checkNames(topic); err != nil {
		return fmt.Errorf("delete acl: %w", err)
	}
	req := protocol.NameRequest{Name: topic}
	return c.call(protocol.OpACLDelete, req.AppendTo, &protocol.UserAck{})
}

// ListACLs returns every access list, sorted by topic, and the broker's
// default_public setting. Admin only.
func (c *Client) ListACLs() (ACLList, error) {
	var resp ACLList
	err := c.call(protocol.OpACLList, noPayload, &resp)
	return resp, err
}

// ListRoles returns the roles with their permissions and descriptions:
// the built-ins admin, producer, consumer, guest first.
func (c *Client) ListRoles() ([]RoleInfo, error) {
	var resp protocol.RoleList
	if err := c.call(protocol.OpRoleList, noPayload, &resp); err != nil {
		return nil, err
	}
	return resp.Roles, nil
}

// auditRequest converts a filter to the AUDIT_QUERY request.
func auditRequest(f AuditFilter) (protocol.AuditQueryRequest, error) {
	if err := checkNames(append([]string{f.User, f.Resource, f.Result, f.Search}, f.EventTypes...)...); err != nil {
		return protocol.AuditQueryRequest{}, err
	}
	q := protocol.AuditQueryRequest{
		EventTypes: f.EventTypes, User: f.User, Resource: f.Resource, Result: f.Result, Search: f.Search,
		Limit: clampInt32(f.Limit), Offset: clampInt32(f.Offset),
	}
	if !f.Start.IsZero() {
		q.StartTime = f.Start.Unix()
	}
	if !f.End.IsZero() {
		q.EndTime = f.End.Unix()
	}
	return q, nil
}

func clampInt32(n int) int32 {
	return int32(max(min(n, math.MaxInt32), math.MinInt32))
}

// AuditQuery returns one page of audit events matching f, newest first.
// Admin only.
func (c *Client) AuditQuery(f AuditFilter) (*AuditResult, error) {
	req, err := auditRequest(f)
	if err != nil {
		return nil, fmt.Errorf("audit query: %w", err)
	}
	var resp protocol.AuditQueryResponse
	if err := c.call(protocol.OpAuditQuery, req.AppendTo, &resp); err != nil {
		return nil, err
	}
	return &AuditResult{Events: resp.Events, TotalCount: int(resp.TotalCount), HasMore: resp.HasMore}, nil
}

// AuditExport returns every audit event matching f (Limit and Offset are
// ignored) as one document: "csv", or JSON for any other format. Admin
// only.
func (c *Client) AuditExport(f AuditFilter, format string) ([]byte, error) {
	q, err := auditRequest(f)
	if err != nil {
		return nil, fmt.Errorf("audit export: %w", err)
	}
	if err := checkNames(format); err != nil {
		return nil, fmt.Errorf("audit export: %w", err)
	}
	req := protocol.AuditExportRequest{Query: q, Format: format}
	var resp protocol.AuditExportResponse
	if err := c.call(protocol.OpAuditExport, req.AppendTo, &resp); err != nil {
		return nil, err
	}
	return resp.Data, nil
}
