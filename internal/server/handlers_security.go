package server

import (
	"errors"
	"slices"
	"time"

	"github.com/flymq/flymq/internal/audit"
	"github.com/flymq/flymq/internal/auth"
	"github.com/flymq/flymq/internal/protocol"
)

// identity is the connection's current identity for the gate checks.
func (c *conn) identity() auth.Identity {
	if !c.authed {
		return auth.Identity{ClientIP: c.ip}
	}
	return auth.Identity{User: c.user, FromCert: c.user == c.certUser && c.certUser != "", ClientIP: c.ip}
}

// check decides gate g for id; with authentication disabled every gate
// passes (§3.6).
func (s *Server) check(id auth.Identity, g auth.Gate, topic string) error {
	if !s.opts.Auth.Enabled() || g == auth.GateNone {
		return nil
	}
	return s.opts.Auth.Check(id, g, topic)
}

func isAuthError(err error) bool {
	for _, e := range []error{auth.ErrAuthRequired, auth.ErrUnauthorized, auth.ErrDisabled, auth.ErrAuthDisabled} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// auditDenied records a refused request; the store records its own
// user-management events.
func (c *conn) auditDenied(topic string, err error) {
	if c.s.opts.Audit == nil {
		return
	}
	c.s.opts.Audit.Record(audit.Event{
		Type:     audit.TypeAccessDenied,
		User:     c.identity().User,
		ClientIP: c.ip,
		Resource: topic,
		Action:   c.op.String(),
		Result:   audit.ResultDenied,
		Details:  map[string]string{"reason": err.Error()},
	})
}

// audit records the outcome of a topic-level change.
func (c *conn) audit(typ, resource, action string, err error) {
	if c.s.opts.Audit == nil {
		return
	}
	ev := audit.Event{
		Type: typ, User: c.identity().User, ClientIP: c.ip,
		Resource: resource, Action: action, Result: audit.ResultSuccess,
	}
	if err != nil {
		ev.Result = audit.ResultFailure
		ev.Details = map[string]string{"error": err.Error()}
	}
	c.s.opts.Audit.Record(ev)
}

// authenticate serves AUTH. Failures stay in-band (opcode 0x71,
// success=0) because pyflymq turns exactly that into AuthenticationError.
func (c *conn) authenticate(_ protocol.Op, p []byte, out []byte) ([]byte, error) {
	var req protocol.AuthRequest
	if err := req.Decode(p); err != nil {
		return out, err
	}
	c.gated = true // AUTH is ungated by definition (§3.5)
	resp := protocol.AuthResponse{Success: true, Username: req.Username}
	store := c.s.opts.Auth
	if store.Enabled() {
		roles, err := store.Authenticate(c.ip, req.Username, req.Password)
		if err != nil {
			// A failed AUTH leaves the connection anonymous, or with the
			// identity its client certificate proved.
			c.user, c.authed = c.certUser, c.certUser != ""
			resp = protocol.AuthResponse{Error: authFailureText(err)}
		} else {
			c.user, c.authed = req.Username, true
			resp.Roles = roles
		}
		c.setFrameLimit()
	}
	return appendReply(out, protocol.OpAuthResponse, &resp), nil
}

// authFailureText keeps the in-band texts the clients show; anything else
// (a store fault) is logged by the store and reported generically.
func authFailureText(err error) string {
	for _, e := range []error{auth.ErrBadCredentials, auth.ErrDisabled, auth.ErrTooManyAttempts} {
		if errors.Is(err, e) {
			return e.Error()
		}
	}
	return auth.ErrBadCredentials.Error()
}

// whoAmI always answers 0x72 in the identity layout: the Go client cannot
// decode an ERROR here.
func (c *conn) whoAmI(op protocol.Op, _ []byte, out []byte) ([]byte, error) {
	c.gated = true
	var resp protocol.IdentityResponse
	if c.s.opts.Auth.Enabled() && c.authed {
		resp.Authenticated, resp.Username, resp.Permissions = c.s.opts.Auth.WhoAmI(c.identity())
	}
	return appendReply(out, op, &resp), nil
}

// requireAuthEnabled answers the user-management ops when authentication
// is off, instead of crashing as the old server did.
func (c *conn) requireAuthEnabled() error {
	if !c.s.opts.Auth.Enabled() {
		return auth.ErrAuthDisabled
	}
	return nil
}

func (c *conn) userCreate(op protocol.Op, p []byte, out []byte) ([]byte, error) {
	if err := c.requireAuthEnabled(); err != nil {
		return out, err
	}
	var req protocol.UserRequest
	if err := req.Decode(p); err != nil {
		return out, err
	}
	if err := c.s.opts.Auth.CreateUser(c.identity(), req.Username, req.Password, req.Roles); err != nil {
		return out, userError(err)
	}
	info := protocol.UserInfo{Username: req.Username, Roles: req.Roles, Enabled: true}
	return appendReply(out, op, &info), nil
}

func (c *conn) userDelete(op protocol.Op, p []byte, out []byte) ([]byte, error) {
	if err := c.requireAuthEnabled(); err != nil {
		return out, err
	}
	var req protocol.NameRequest
	if err := req.Decode(p); err != nil {
		return out, err
	}
	if err := c.s.opts.Auth.DeleteUser(c.identity(), req.Name); err != nil {
		return out, userError(err)
	}
	return appendAck(out, op, req.Name), nil
}

func (c *conn) userUpdate(op protocol.Op, p []byte, out []byte) ([]byte, error) {
	if err := c.requireAuthEnabled(); err != nil {
		return out, err
	}
	var req protocol.UserRequest
	if err := req.Decode(p); err != nil {
		return out, err
	}
	// An empty role list and a missing enabled byte both mean "leave as is"
	// (§5.3), so the Go client's partial updates do not wipe the account.
	var enabled *bool
	if req.HasEnabled {
		enabled = &req.Enabled
	}
	if err := c.s.opts.Auth.UpdateUser(c.identity(), req.Username, req.Roles, enabled); err != nil {
		return out, userError(err)
	}
	return appendAck(out, op, req.Username), nil
}

func (c *conn) userList(op protocol.Op, _ []byte, out []byte) ([]byte, error) {
	if err := c.requireAuthEnabled(); err != nil {
		return out, err
	}
	users, err := c.s.opts.Auth.Users()
	if err != nil {
		return out, err
	}
	resp := protocol.UserList{Users: make([]protocol.UserInfo, len(users))}
	for i, u := range users {
		resp.Users[i] = wireUser(u)
	}
	return appendReply(out, op, &resp), nil
}

func (c *conn) userGet(op protocol.Op, p []byte, out []byte) ([]byte, error) {
	if err := c.requireAuthEnabled(); err != nil {
		return out, err
	}
	var req protocol.NameRequest
	if err := req.Decode(p); err != nil {
		return out, err
	}
	u, err := c.s.opts.Auth.GetUser(req.Name)
	if err != nil {
		return out, userError(err)
	}
	info := wireUser(u)
	return appendReply(out, op, &info), nil
}

func wireUser(u auth.UserInfo) protocol.UserInfo {
	return protocol.UserInfo{
		Username: u.Username, Roles: u.Roles, Permissions: u.Permissions, Enabled: u.Enabled,
		CreatedAt: u.CreatedAt.Unix(), UpdatedAt: u.UpdatedAt.Unix(),
	}
}

// passwordChange decides its own gate (§5.6): changing one's own password
// needs the old one, anyone else's needs user management. Both decisions
// are the store's.
func (c *conn) passwordChange(op protocol.Op, p []byte, out []byte) ([]byte, error) {
	c.gated = true
	if err := c.requireAuthEnabled(); err != nil {
		return out, err
	}
	var req protocol.UserRequest
	if err := req.Decode(p); err != nil {
		return out, err
	}
	if err := c.s.opts.Auth.ChangePassword(c.identity(), req.Username, req.OldPassword, req.Password); err != nil {
		if isAuthError(err) {
			c.s.metrics.denied[op].Inc()
		}
		return out, userError(err)
	}
	return appendAck(out, op, req.Username), nil
}

func (c *conn) aclSet(op protocol.Op, p []byte, out []byte) ([]byte, error) {
	if err := c.requireAuthEnabled(); err != nil {
		return out, err
	}
	var req protocol.ACLSetRequest
	if err := req.Decode(p); err != nil {
		return out, err
	}
	if err := c.s.opts.Auth.SetACL(c.identity(), req.Topic, req.Public, req.AllowedUsers, req.AllowedRoles); err != nil {
		return out, userError(err)
	}
	return appendAck(out, op, req.Topic), nil
}

func (c *conn) aclGet(op protocol.Op, p []byte, out []byte) ([]byte, error) {
	if err := c.requireAuthEnabled(); err != nil {
		return out, err
	}
	var req protocol.NameRequest
	if err := req.Decode(p); err != nil {
		return out, err
	}
	acl, ok, err := c.s.opts.Auth.GetACL(req.Name)
	if err != nil {
		return out, err
	}
	resp := protocol.ACLInfo{Topic: req.Name, Exists: ok, DefaultPublic: c.s.opts.Auth.DefaultPublic()}
	if ok {
		resp.Public, resp.AllowedUsers, resp.AllowedRoles = acl.Public, acl.AllowedUsers, acl.AllowedRoles
	}
	return appendReply(out, op, &resp), nil
}

func (c *conn) aclDelete(op protocol.Op, p []byte, out []byte) ([]byte, error) {
	if err := c.requireAuthEnabled(); err != nil {
		return out, err
	}
	var req protocol.NameRequest
	if err := req.Decode(p); err != nil {
		return out, err
	}
	if err := c.s.opts.Auth.DeleteACL(c.identity(), req.Name); err != nil {
		return out, userError(err)
	}
	return appendAck(out, op, req.Name), nil
}

func (c *conn) aclList(op protocol.Op, _ []byte, out []byte) ([]byte, error) {
	if err := c.requireAuthEnabled(); err != nil {
		return out, err
	}
	acls, err := c.s.opts.Auth.ACLs()
	if err != nil {
		return out, err
	}
	resp := protocol.ACLList{DefaultPublic: c.s.opts.Auth.DefaultPublic()}
	for _, a := range acls {
		resp.Entries = append(resp.Entries, protocol.ACLEntry{
			Topic: a.Topic, Public: a.Public, AllowedUsers: a.AllowedUsers, AllowedRoles: a.AllowedRoles,
		})
	}
	return appendReply(out, op, &resp), nil
}

func (c *conn) roleList(op protocol.Op, _ []byte, out []byte) ([]byte, error) {
	if err := c.authorize(""); err != nil {
		return out, err
	}
	var resp protocol.RoleList
	for _, r := range c.s.opts.Auth.Roles() {
		resp.Roles = append(resp.Roles, protocol.RoleInfo{Name: r.Name, Permissions: r.Permissions, Description: r.Description})
	}
	return appendReply(out, op, &resp), nil
}

// userError passes the store's texts through: they are the exact wire
// texts of §2.3 and carry no secret.
func userError(err error) error {
	if isAuthError(err) {
		return err
	}
	var ue *auth.UserError
	if errors.As(err, &ue) {
		return wireError(ue.Error())
	}
	for _, e := range []error{
		auth.ErrCredentialsRequired, auth.ErrCannotDeleteSelf, auth.ErrInvalidCurrentPassword,
		auth.ErrPasswordTooLong, auth.ErrPasswordTooShort, auth.ErrRoleNameTooLong, auth.ErrPublicNeedsAnonymous,
		auth.ErrInvalidUserName,
	} {
		if errors.Is(err, e) {
			return wireError(err.Error())
		}
	}
	return err
}

func appendAck(out []byte, op protocol.Op, name string) []byte {
	ack := protocol.UserAck{OK: true, Name: name}
	return appendReply(out, op, &ack)
}

// Audit ops. Their gate runs first (gateFirst), with its own failure text.

func (c *conn) auditLog() (*audit.Log, error) {
	if c.s.opts.Audit == nil {
		return nil, wireError("audit trail is not enabled")
	}
	return c.s.opts.Audit, nil
}

func auditQuery(q protocol.AuditQueryRequest) audit.Query {
	aq := audit.Query{
		EventTypes: q.EventTypes, User: q.User, Resource: q.Resource, Result: q.Result,
		Search: q.Search, Limit: int(q.Limit), Offset: int(q.Offset),
	}
	if q.StartTime != 0 {
		aq.Start = time.Unix(q.StartTime, 0)
	}
	if q.EndTime != 0 {
		aq.End = time.Unix(q.EndTime, 0)
	}
	return aq
}

func wireEvents(res audit.Result) protocol.AuditQueryResponse {
	resp := protocol.AuditQueryResponse{TotalCount: int32(res.Total), HasMore: res.HasMore}
	for _, ev := range res.Events {
		we := protocol.AuditEvent{
			ID: ev.ID, Timestamp: ev.Timestamp.UnixMilli(), Type: ev.Type, User: ev.User,
			ClientIP: ev.ClientIP, Resource: ev.Resource, Action: ev.Action, Result: ev.Result, NodeID: ev.NodeID,
		}
		for _, k := range sortedKeys(ev.Details) {
			we.Details = append(we.Details, protocol.AuditDetail{Key: k, Value: ev.Details[k]})
		}
		resp.Events = append(resp.Events, we)
	}
	return resp
}

func (c *conn) auditQuery(op protocol.Op, p []byte, out []byte) ([]byte, error) {
	l, err := c.auditLog()
	if err != nil {
		return out, err
	}
	var req protocol.AuditQueryRequest
	if err := req.Decode(p); err != nil {
		return out, err
	}
	res, err := l.Query(auditQuery(req))
	if err != nil {
		return out, errorf("audit query failed: %v", err)
	}
	resp := wireEvents(res)
	return appendReply(out, op, &resp), nil
}

func (c *conn) auditExport(op protocol.Op, p []byte, out []byte) ([]byte, error) {
	l, err := c.auditLog()
	if err != nil {
		return out, err
	}
	var req protocol.AuditExportRequest
	if err := req.Decode(p); err != nil {
		return out, err
	}
	q := auditQuery(req.Query)
	q.Limit, q.Offset = 0, 0
	data, err := l.Export(q, req.Format)
	if err != nil {
		return out, errorf("audit export failed: %v", err)
	}
	resp := protocol.AuditExportResponse{Format: req.Format, Data: data}
	return appendReply(out, op, &resp), nil
}

func (c *conn) auditQueryJava(op protocol.Op, p []byte, out []byte) ([]byte, error) {
	l, err := c.auditLog()
	if err != nil {
		return out, err
	}
	var req protocol.JavaAuditQueryRequest
	if err := req.Decode(p); err != nil {
		return out, err
	}
	res, err := l.Query(auditQuery(req.AuditQueryRequest))
	if err != nil {
		return out, errorf("audit query failed: %v", err)
	}
	resp := protocol.JavaAuditQueryResponse{AuditQueryResponse: wireEvents(res)}
	return appendReply(out, op, &resp), nil
}

func (c *conn) auditExportJava(op protocol.Op, p []byte, out []byte) ([]byte, error) {
	l, err := c.auditLog()
	if err != nil {
		return out, err
	}
	var req protocol.JavaAuditExportRequest
	if err := req.Decode(p); err != nil {
		return out, err
	}
	data, err := l.Export(auditQuery(req.Query), req.Format)
	if err != nil {
		return out, errorf("audit export failed: %v", err)
	}
	resp := protocol.JavaAuditExportResponse{Data: data}
	return appendReply(out, op, &resp), nil
}

// gateFirstText replaces a failed up-front gate's text where the spec
// gives the op its own words (§2.3).
func gateFirstText(op protocol.Op, err error) error {
	switch op {
	case protocol.OpAuditQuery, protocol.OpAuditQueryJava:
		return wireError("admin access required for audit queries")
	case protocol.OpAuditExport, protocol.OpAuditExportJava:
		return wireError("admin access required for audit export")
	}
	return err
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
