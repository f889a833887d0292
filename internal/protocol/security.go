package protocol

// Codecs of the identity, user, ACL, role and audit operations
// (security-and-advanced.md §§4–7): opcodes 0x70–0x7D, 0x80/0x81 and the
// Java audit layouts 0xA0/0xA1.
//
// Decode errors carry the exact wire text of §2.3 (for example
// "invalid auth request: buffer too small") and still match
// ErrBufferTooSmall / ErrInvalidFormat with errors.Is, so the server can
// send err.Error() verbatim.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
)

// Wire limits of the string encodings used here.
const (
	// MaxRoleNameLen is the longest role name the AUTH reply can carry
	// (u8 length prefix); longer role names are refused by the user store.
	MaxRoleNameLen = MaxStr8
	// maxJavaStr is the longest string the Java SDK reads correctly: it
	// decodes str16 lengths as signed 16-bit values.
	maxJavaStr = 1<<15 - 1
	// maxJavaCount is the longest list the Java layouts can carry: their
	// counts are signed 16-bit values too.
	maxJavaCount = 1<<15 - 1
)

// ErrInvalidAuditRequest marks a malformed AUDIT_QUERY / AUDIT_EXPORT
// request (either layout); the error text is the exact §2.3 wire text.
var ErrInvalidAuditRequest = errors.New("invalid audit request")

// Decode errors with the exact wire texts of §2.3.
var (
	errAuthTooSmall    = fmt.Errorf("invalid auth request: %w", ErrBufferTooSmall)
	errAuthFormat      = fmt.Errorf("invalid auth request: %w", ErrInvalidFormat)
	errRequestTooSmall = fmt.Errorf("invalid request: %w", ErrBufferTooSmall)
	errRequestFormat   = fmt.Errorf("invalid request: %w", ErrInvalidFormat)
)

// secError is a decode error whose text is fixed by the spec; it unwraps
// to a sentinel so callers can still classify it.
type secError struct {
	text string
	base error
}

func (e *secError) Error() string { return e.text }
func (e *secError) Unwrap() error { return e.base }

func secAuditQueryError(reason string) error {
	return &secError{text: "invalid audit query request: " + reason, base: ErrInvalidAuditRequest}
}

func secAuditExportError(reason string) error {
	return &secError{text: "invalid audit export request: " + reason, base: ErrInvalidAuditRequest}
}

// secAuditReason returns the part of an audit decode error after its
// "invalid audit ... request: " prefix, for nesting in export errors.
func secAuditReason(err error) string {
	var we *secError
	if errors.As(err, &we) {
		if _, r, ok := strings.Cut(we.text, ": "); ok {
			return r
		}
	}
	return err.Error()
}

// ---- AUTH 0x70 / 0x71, WHOAMI 0x72 (§4) ----

// AuthRequest is the AUTH (0x70) request.
type AuthRequest struct {
	Username, Password string
}

// Decode parses an AUTH request (minimum 4 bytes).
func (m *AuthRequest) Decode(p []byte) error {
	if len(p) < 4 {
		return errAuthTooSmall
	}
	r := reader{p: p}
	m.Username = string(r.str16())
	m.Password = string(r.str16())
	if r.bad {
		return errAuthFormat
	}
	return nil
}

// AppendTo appends the AUTH request payload.
func (m *AuthRequest) AppendTo(dst []byte) []byte {
	dst = appendStr16(dst, m.Username)
	return appendStr16(dst, m.Password)
}

// AuthResponse is the AUTH reply body sent with opcode 0x71: bool
// success, str16 username, u32 n, n × (u8 length + role), str16 error.
// This is the upstream form that pyflymq and the Go client decode; the
// failure form has Success false, empty Username and Roles, and Error set.
type AuthResponse struct {
	Success  bool
	Username string
	Roles    []string
	Error    string
}

// Decode parses an AUTH reply. A missing trailing error string is
// accepted as empty.
func (m *AuthResponse) Decode(p []byte) error {
	if len(p) < 7 {
		return ErrBufferTooSmall
	}
	r := reader{p: p}
	m.Success = r.bool()
	m.Username = string(r.str16())
	n := r.u32()
	m.Roles = make([]string, 0, listCap(n, r.remaining(), 1))
	for range n {
		role := r.str8()
		if r.bad {
			return ErrInvalidFormat
		}
		m.Roles = append(m.Roles, string(role))
	}
	m.Error = ""
	if r.remaining() > 0 {
		m.Error = string(r.str16())
	}
	return r.finish()
}

// AppendTo appends the AUTH reply payload. Role names longer than
// MaxRoleNameLen are truncated (the store refuses them at creation, so
// this only keeps the frame well-formed).
func (m *AuthResponse) AppendTo(dst []byte) []byte {
	dst = appendBool(dst, m.Success)
	dst = appendStr16(dst, m.Username)
	dst = appendU32(dst, uint32(len(m.Roles)))
	for _, role := range m.Roles {
		dst = appendStr8(dst, role)
	}
	return appendStr16(dst, m.Error)
}

// IdentityResponse is the identity layout of §4.1 used by the WHOAMI
// (0x72) reply: bool authenticated, str16 username, u32 n + n × str16
// role (the broker always sends 0), strlist effective permissions.
type IdentityResponse struct {
	Authenticated bool
	Username      string
	Roles         []string
	Permissions   []string
}

// Decode parses an identity reply.
func (m *IdentityResponse) Decode(p []byte) error {
	if len(p) < 11 {
		return ErrBufferTooSmall
	}
	r := reader{p: p}
	m.Authenticated = r.bool()
	m.Username = string(r.str16())
	m.Roles = readStrList(&r)
	m.Permissions = readStrList(&r)
	return r.finish()
}

// AppendTo appends the identity payload.
func (m *IdentityResponse) AppendTo(dst []byte) []byte {
	dst = appendBool(dst, m.Authenticated)
	dst = appendStr16(dst, m.Username)
	dst = appendStrList(dst, m.Roles)
	return appendStrList(dst, m.Permissions)
}

// ---- user management 0x73–0x77, 0x7C (§5) ----

// UserRequest is the user request of USER_CREATE (0x73), USER_UPDATE
// (0x75) and PASSWORD_CHANGE (0x7C). The trailing enabled byte is
// optional on the wire; HasEnabled records whether it was present
// (USER_UPDATE leaves the flag unchanged when it is not) and makes
// AppendTo write it.
type UserRequest struct {
	Username    string
	Password    string
	OldPassword string
	Roles       []string
	Enabled     bool
	HasEnabled  bool
}

// Decode parses a user request with upstream's rules: at least 10 bytes,
// at least 5 bytes after old_password, enabled read if a byte remains
// after the roles.
func (m *UserRequest) Decode(p []byte) error {
	if len(p) < 10 {
		return errRequestTooSmall
	}
	r := reader{p: p}
	m.Username = string(r.str16())
	m.Password = string(r.str16())
	m.OldPassword = string(r.str16())
	if r.bad || r.remaining() < 5 {
		return errRequestFormat
	}
	if m.Roles = readStrList(&r); r.bad {
		return errRequestFormat
	}
	m.HasEnabled = r.remaining() > 0
	m.Enabled = m.HasEnabled && r.bool()
	return nil
}

// AppendTo appends the user request; the enabled byte only when
// HasEnabled is set.
func (m *UserRequest) AppendTo(dst []byte) []byte {
	dst = appendStr16(dst, m.Username)
	dst = appendStr16(dst, m.Password)
	dst = appendStr16(dst, m.OldPassword)
	dst = appendStrList(dst, m.Roles)
	if m.HasEnabled {
		dst = appendBool(dst, m.Enabled)
	}
	return dst
}

// NameRequest is the single-str16 request of USER_DELETE (0x74),
// USER_GET (0x77), ACL_GET (0x79) and ACL_DELETE (0x7A).
type NameRequest struct {
	Name string
}

// Decode parses a name request (minimum 2 bytes).
func (m *NameRequest) Decode(p []byte) error {
	if len(p) < 2 {
		return errRequestTooSmall
	}
	r := reader{p: p}
	if m.Name = string(r.str16()); r.bad {
		return errRequestFormat
	}
	return nil
}

// AppendTo appends the name request payload.
func (m *NameRequest) AppendTo(dst []byte) []byte {
	return appendStr16(dst, m.Name)
}

// UserInfo is the user-info body of USER_CREATE and USER_GET replies and
// of each USER_LIST entry. Times are Unix seconds.
type UserInfo struct {
	Username    string
	Roles       []string
	Permissions []string
	Enabled     bool
	CreatedAt   int64
	UpdatedAt   int64
}

func (m *UserInfo) decodeFrom(r *reader) {
	m.Username = string(r.str16())
	m.Roles = readStrList(r)
	m.Permissions = readStrList(r)
	m.Enabled = r.bool()
	m.CreatedAt = r.i64()
	m.UpdatedAt = r.i64()
}

// Decode parses a user-info body.
func (m *UserInfo) Decode(p []byte) error {
	if len(p) < 27 {
		return ErrBufferTooSmall
	}
	r := reader{p: p}
	m.decodeFrom(&r)
	return r.finish()
}

// AppendTo appends the user-info body.
func (m *UserInfo) AppendTo(dst []byte) []byte {
	dst = appendStr16(dst, m.Username)
	dst = appendStrList(dst, m.Roles)
	dst = appendStrList(dst, m.Permissions)
	dst = appendBool(dst, m.Enabled)
	dst = appendI64(dst, m.CreatedAt)
	return appendI64(dst, m.UpdatedAt)
}

// UserList is the USER_LIST (0x76) reply: u32 count + user-info bodies.
type UserList struct {
	Users []UserInfo
}

// Decode parses a USER_LIST reply.
func (m *UserList) Decode(p []byte) error {
	r := reader{p: p}
	n := r.u32()
	if r.bad {
		return ErrBufferTooSmall
	}
	m.Users = make([]UserInfo, 0, listCap(n, r.remaining(), 27))
	for range n {
		var u UserInfo
		if u.decodeFrom(&r); r.bad {
			return ErrInvalidFormat
		}
		m.Users = append(m.Users, u)
	}
	return nil
}

// AppendTo appends the USER_LIST reply.
func (m *UserList) AppendTo(dst []byte) []byte {
	dst = appendU32(dst, uint32(len(m.Users)))
	for i := range m.Users {
		dst = m.Users[i].AppendTo(dst)
	}
	return dst
}

// UserAck is the bool + str16 reply of USER_DELETE, USER_UPDATE,
// PASSWORD_CHANGE (user name) and ACL_SET, ACL_DELETE (topic).
type UserAck struct {
	OK   bool
	Name string
}

// Decode parses the acknowledgement.
func (m *UserAck) Decode(p []byte) error {
	if len(p) < 3 {
		return ErrBufferTooSmall
	}
	r := reader{p: p}
	m.OK = r.bool()
	m.Name = string(r.str16())
	return r.finish()
}

// AppendTo appends the acknowledgement.
func (m *UserAck) AppendTo(dst []byte) []byte {
	dst = appendBool(dst, m.OK)
	return appendStr16(dst, m.Name)
}

// ---- ACLs and roles 0x78–0x7B, 0x7D (§6) ----

// ACLSetRequest is the ACL_SET (0x78) request.
type ACLSetRequest struct {
	Topic        string
	Public       bool
	AllowedUsers []string
	AllowedRoles []string
}

// Decode parses an ACL_SET request (minimum 11 bytes).
func (m *ACLSetRequest) Decode(p []byte) error {
	if len(p) < 11 {
		return errRequestTooSmall
	}
	r := reader{p: p}
	m.Topic = string(r.str16())
	m.Public = r.bool()
	m.AllowedUsers = readStrList(&r)
	m.AllowedRoles = readStrList(&r)
	if r.bad {
		return errRequestFormat
	}
	return nil
}

// AppendTo appends the ACL_SET request.
func (m *ACLSetRequest) AppendTo(dst []byte) []byte {
	dst = appendStr16(dst, m.Topic)
	dst = appendBool(dst, m.Public)
	dst = appendStrList(dst, m.AllowedUsers)
	return appendStrList(dst, m.AllowedRoles)
}

// ACLInfo is the ACL_GET (0x79) reply.
type ACLInfo struct {
	Topic         string
	Exists        bool
	Public        bool
	DefaultPublic bool
	AllowedUsers  []string
	AllowedRoles  []string
}

// Decode parses an ACL_GET reply.
func (m *ACLInfo) Decode(p []byte) error {
	if len(p) < 13 {
		return ErrBufferTooSmall
	}
	r := reader{p: p}
	m.Topic = string(r.str16())
	m.Exists = r.bool()
	m.Public = r.bool()
	m.DefaultPublic = r.bool()
	m.AllowedUsers = readStrList(&r)
	m.AllowedRoles = readStrList(&r)
	return r.finish()
}

// AppendTo appends the ACL_GET reply.
func (m *ACLInfo) AppendTo(dst []byte) []byte {
	dst = appendStr16(dst, m.Topic)
	dst = appendBool(dst, m.Exists)
	dst = appendBool(dst, m.Public)
	dst = appendBool(dst, m.DefaultPublic)
	dst = appendStrList(dst, m.AllowedUsers)
	return appendStrList(dst, m.AllowedRoles)
}

// ACLEntry is one entry of an ACL_LIST reply. Its exists byte is always 1
// on the wire.
type ACLEntry struct {
	Topic        string
	Public       bool
	AllowedUsers []string
	AllowedRoles []string
}

// ACLList is the ACL_LIST (0x7B) reply: u32 count, entries without a
// default_public byte, then one bool default_public.
type ACLList struct {
	Entries       []ACLEntry
	DefaultPublic bool
}

// Decode parses an ACL_LIST reply.
func (m *ACLList) Decode(p []byte) error {
	if len(p) < 5 {
		return ErrBufferTooSmall
	}
	r := reader{p: p}
	n := r.u32()
	m.Entries = make([]ACLEntry, 0, listCap(n, r.remaining(), 12))
	for range n {
		var e ACLEntry
		e.Topic = string(r.str16())
		r.u8() // exists, always 1
		e.Public = r.bool()
		e.AllowedUsers = readStrList(&r)
		e.AllowedRoles = readStrList(&r)
		if r.bad {
			return ErrInvalidFormat
		}
		m.Entries = append(m.Entries, e)
	}
	m.DefaultPublic = r.bool()
	return r.finish()
}

// AppendTo appends the ACL_LIST reply.
func (m *ACLList) AppendTo(dst []byte) []byte {
	dst = appendU32(dst, uint32(len(m.Entries)))
	for _, e := range m.Entries {
		dst = appendStr16(dst, e.Topic)
		dst = append(dst, 1)
		dst = appendBool(dst, e.Public)
		dst = appendStrList(dst, e.AllowedUsers)
		dst = appendStrList(dst, e.AllowedRoles)
	}
	return appendBool(dst, m.DefaultPublic)
}

// RoleInfo is one role of a ROLE_LIST reply.
type RoleInfo struct {
	Name        string
	Permissions []string
	Description string
}

// RoleList is the ROLE_LIST (0x7D) reply.
type RoleList struct {
	Roles []RoleInfo
}

// Decode parses a ROLE_LIST reply.
func (m *RoleList) Decode(p []byte) error {
	r := reader{p: p}
	n := r.u32()
	if r.bad {
		return ErrBufferTooSmall
	}
	m.Roles = make([]RoleInfo, 0, listCap(n, r.remaining(), 8))
	for range n {
		var ri RoleInfo
		ri.Name = string(r.str16())
		ri.Permissions = readStrList(&r)
		ri.Description = string(r.str16())
		if r.bad {
			return ErrInvalidFormat
		}
		m.Roles = append(m.Roles, ri)
	}
	return nil
}

// AppendTo appends the ROLE_LIST reply.
func (m *RoleList) AppendTo(dst []byte) []byte {
	dst = appendU32(dst, uint32(len(m.Roles)))
	for _, ri := range m.Roles {
		dst = appendStr16(dst, ri.Name)
		dst = appendStrList(dst, ri.Permissions)
		dst = appendStr16(dst, ri.Description)
	}
	return dst
}

// ---- audit 0x80 / 0x81 (§7.2) ----

// AuditQueryRequest is the AUDIT_QUERY (0x80) request. Times are Unix
// seconds, 0 = open. The broker clamps Limit ≤ 0 to 100 and Offset < 0
// to 0 (§7.1); the codec keeps the wire values.
type AuditQueryRequest struct {
	StartTime  int64
	EndTime    int64
	EventTypes []string
	User       string
	Resource   string
	Result     string
	Search     string
	Limit      int32
	Offset     int32
}

// Decode parses an AUDIT_QUERY request (minimum 28 bytes) with the
// upstream error texts.
func (m *AuditQueryRequest) Decode(p []byte) error {
	if len(p) < 28 {
		return secAuditQueryError("audit query request too short")
	}
	r := reader{p: p}
	m.StartTime = r.i64()
	m.EndTime = r.i64()
	n := r.u32()
	var err error
	if m.EventTypes, err = readEventTypes(&r, n); err != nil {
		return err
	}
	if err := m.decodeFilters(&r); err != nil {
		return err
	}
	return m.decodePage(&r)
}

func readEventTypes(r *reader, n uint32) ([]string, error) {
	out := make([]string, 0, listCap(n, r.remaining(), 2))
	for range n {
		l := r.u16()
		if r.bad {
			return nil, secAuditQueryError("invalid event type length")
		}
		b := r.take(int(l))
		if r.bad {
			return nil, secAuditQueryError("invalid event type")
		}
		out = append(out, string(b))
	}
	return out, nil
}

func (m *AuditQueryRequest) decodeFilters(r *reader) error {
	for _, f := range []struct {
		name string
		dst  *string
	}{{"user", &m.User}, {"resource", &m.Resource}, {"result", &m.Result}, {"search", &m.Search}} {
		l := r.u16()
		if r.bad {
			return secAuditQueryError("missing " + f.name + " length")
		}
		b := r.take(int(l))
		if r.bad {
			return secAuditQueryError("invalid " + f.name)
		}
		*f.dst = string(b)
	}
	return nil
}

func (m *AuditQueryRequest) decodePage(r *reader) error {
	limit := r.i32()
	if r.bad {
		return secAuditQueryError("missing limit")
	}
	offset := r.i32()
	if r.bad {
		return secAuditQueryError("missing offset")
	}
	m.Limit, m.Offset = limit, offset
	return nil
}

// AppendTo appends the AUDIT_QUERY request.
func (m *AuditQueryRequest) AppendTo(dst []byte) []byte {
	dst = appendI64(dst, m.StartTime)
	dst = appendI64(dst, m.EndTime)
	dst = appendStrList(dst, m.EventTypes)
	for _, s := range []string{m.User, m.Resource, m.Result, m.Search} {
		dst = appendStr16(dst, s)
	}
	dst = appendI32(dst, m.Limit)
	return appendI32(dst, m.Offset)
}

// AuditDetail is one key/value pair of an event's details, kept as a
// slice so the encoding is deterministic.
type AuditDetail struct {
	Key, Value string
}

// AuditEvent is one audit event on the wire. Timestamp is Unix
// milliseconds.
type AuditEvent struct {
	ID        string
	Timestamp int64
	Type      string
	User      string
	ClientIP  string
	Resource  string
	Action    string
	Result    string
	NodeID    string
	Details   []AuditDetail
}

func (m *AuditEvent) strings() []*string {
	return []*string{&m.Type, &m.User, &m.ClientIP, &m.Resource, &m.Action, &m.Result}
}

// Decode parses the 0x80 event body.
func (m *AuditEvent) Decode(p []byte) error {
	r := reader{p: p}
	m.ID = string(r.str16())
	m.Timestamp = r.i64()
	for _, s := range m.strings() {
		*s = string(r.str16())
	}
	m.NodeID = string(r.str16())
	m.Details = readDetails(&r, r.u32())
	return r.finish()
}

func readDetails(r *reader, n uint32) []AuditDetail {
	out := make([]AuditDetail, 0, listCap(n, r.remaining(), 4))
	for range n {
		k, v := r.str16(), r.str16()
		if r.bad {
			return nil
		}
		out = append(out, AuditDetail{Key: string(k), Value: string(v)})
	}
	return out
}

// AppendTo appends the 0x80 event body (without its u32 length prefix).
func (m *AuditEvent) AppendTo(dst []byte) []byte {
	dst = appendStr16(dst, m.ID)
	dst = appendI64(dst, m.Timestamp)
	for _, s := range m.strings() {
		dst = appendStr16(dst, *s)
	}
	dst = appendStr16(dst, m.NodeID)
	dst = appendU32(dst, uint32(len(m.Details)))
	for _, d := range m.Details {
		dst = appendStr16(dst, d.Key)
		dst = appendStr16(dst, d.Value)
	}
	return dst
}

// AuditQueryResponse is the AUDIT_QUERY (0x80) reply: u32 n, n × (u32
// length + event body), i32 total_count, bool has_more.
type AuditQueryResponse struct {
	Events     []AuditEvent
	TotalCount int32
	HasMore    bool
}

// Decode parses an AUDIT_QUERY reply.
func (m *AuditQueryResponse) Decode(p []byte) error {
	if len(p) < 9 {
		return ErrBufferTooSmall
	}
	r := reader{p: p}
	n := r.u32()
	m.Events = make([]AuditEvent, 0, listCap(n, r.remaining(), 4))
	for range n {
		body := r.bytes32()
		if r.bad {
			return ErrInvalidFormat
		}
		var e AuditEvent
		if err := e.Decode(body); err != nil {
			return err
		}
		m.Events = append(m.Events, e)
	}
	m.TotalCount = r.i32()
	m.HasMore = r.bool()
	return r.finish()
}

// AppendTo appends the AUDIT_QUERY reply.
func (m *AuditQueryResponse) AppendTo(dst []byte) []byte {
	dst = appendU32(dst, uint32(len(m.Events)))
	for i := range m.Events {
		at := len(dst)
		dst = append(dst, 0, 0, 0, 0)
		dst = m.Events[i].AppendTo(dst)
		binary.BigEndian.PutUint32(dst[at:], uint32(len(dst)-at-4))
	}
	dst = appendI32(dst, m.TotalCount)
	return appendBool(dst, m.HasMore)
}

// AuditExportRequest is the AUDIT_EXPORT (0x81) request: u32 query
// length, an AUDIT_QUERY request (limit/offset ignored), str16 format.
type AuditExportRequest struct {
	Query  AuditQueryRequest
	Format string
}

// Decode parses an AUDIT_EXPORT request with the upstream error texts.
func (m *AuditExportRequest) Decode(p []byte) error {
	if len(p) < 4 {
		return secAuditExportError("audit export request too short")
	}
	r := reader{p: p}
	q := r.bytes32()
	if r.bad {
		return secAuditExportError("invalid query data")
	}
	if err := m.Query.Decode(q); err != nil {
		return secAuditExportError("failed to decode query: " + secAuditReason(err))
	}
	l := r.u16()
	if r.bad {
		return secAuditExportError("missing format length")
	}
	f := r.take(int(l))
	if r.bad {
		return secAuditExportError("invalid format")
	}
	m.Format = string(f)
	return nil
}

// AppendTo appends the AUDIT_EXPORT request.
func (m *AuditExportRequest) AppendTo(dst []byte) []byte {
	at := len(dst)
	dst = append(dst, 0, 0, 0, 0)
	dst = m.Query.AppendTo(dst)
	binary.BigEndian.PutUint32(dst[at:], uint32(len(dst)-at-4))
	return appendStr16(dst, m.Format)
}

// AuditExportResponse is the AUDIT_EXPORT (0x81) reply: str16 format
// (the request's string echoed), bytes32 data.
type AuditExportResponse struct {
	Format string
	Data   []byte
}

// Decode parses an AUDIT_EXPORT reply.
func (m *AuditExportResponse) Decode(p []byte) error {
	if len(p) < 6 {
		return ErrBufferTooSmall
	}
	r := reader{p: p}
	m.Format = string(r.str16())
	d := r.bytes32()
	if r.bad {
		return ErrInvalidFormat
	}
	m.Data = cloneBytes(d)
	return nil
}

// AppendTo appends the AUDIT_EXPORT reply.
func (m *AuditExportResponse) AppendTo(dst []byte) []byte {
	dst = appendStr16(dst, m.Format)
	return appendBytes32(dst, m.Data)
}

// ---- Java audit layouts 0xA0 / 0xA1 (§7.3) ----

// JavaAuditQueryRequest is the 0xA0 request: like AUDIT_QUERY but the
// event type list has a u16 count (strlist16).
type JavaAuditQueryRequest struct {
	AuditQueryRequest
}

// Decode parses a 0xA0 request (minimum 26 bytes, limit and offset
// required) with the AUDIT_QUERY error texts.
func (m *JavaAuditQueryRequest) Decode(p []byte) error {
	if len(p) < 26 {
		return secAuditQueryError("audit query request too short")
	}
	r := reader{p: p}
	m.StartTime = r.i64()
	m.EndTime = r.i64()
	n := r.u16()
	var err error
	if m.EventTypes, err = readEventTypes(&r, uint32(n)); err != nil {
		return err
	}
	if err := m.decodeFilters(&r); err != nil {
		return err
	}
	return m.decodePage(&r)
}

// appendJavaStr appends a str16 truncated to what the Java SDK can read.
func appendJavaStr(dst []byte, s string) []byte {
	if len(s) > maxJavaStr {
		s = s[:maxJavaStr]
	}
	return appendStr16(dst, s)
}

// appendJavaFilters appends the part of the 0xA0 and 0xA1 requests they
// share: times, strlist16 event types and the four string filters.
func appendJavaFilters(dst []byte, q *AuditQueryRequest) []byte {
	dst = appendI64(dst, q.StartTime)
	dst = appendI64(dst, q.EndTime)
	types := q.EventTypes[:min(len(q.EventTypes), maxJavaCount)]
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(types)))
	for _, t := range types {
		dst = appendJavaStr(dst, t)
	}
	for _, s := range []string{q.User, q.Resource, q.Result, q.Search} {
		dst = appendJavaStr(dst, s)
	}
	return dst
}

// AppendTo appends the 0xA0 request.
func (m *JavaAuditQueryRequest) AppendTo(dst []byte) []byte {
	dst = appendJavaFilters(dst, &m.AuditQueryRequest)
	dst = appendI32(dst, m.Limit)
	return appendI32(dst, m.Offset)
}

// JavaAuditQueryResponse is the 0xA0 reply: i32 total_count, bool
// has_more, i32 n, then n events without a length prefix, each with an
// i16 detail count and node_id last. Strings are kept below 32768 bytes
// because Java reads lengths as signed.
type JavaAuditQueryResponse struct {
	AuditQueryResponse
}

// Decode parses a 0xA0 reply.
func (m *JavaAuditQueryResponse) Decode(p []byte) error {
	if len(p) < 9 {
		return ErrBufferTooSmall
	}
	r := reader{p: p}
	m.TotalCount = r.i32()
	m.HasMore = r.bool()
	n := r.u32()
	m.Events = make([]AuditEvent, 0, listCap(n, r.remaining(), 40))
	for range n {
		var e AuditEvent
		e.ID = string(r.str16())
		e.Timestamp = r.i64()
		for _, s := range e.strings() {
			*s = string(r.str16())
		}
		e.Details = readDetails(&r, uint32(r.u16()))
		e.NodeID = string(r.str16())
		if r.bad {
			return ErrInvalidFormat
		}
		m.Events = append(m.Events, e)
	}
	return nil
}

// AppendTo appends the 0xA0 reply.
func (m *JavaAuditQueryResponse) AppendTo(dst []byte) []byte {
	dst = appendI32(dst, m.TotalCount)
	dst = appendBool(dst, m.HasMore)
	dst = appendU32(dst, uint32(len(m.Events)))
	for i := range m.Events {
		e := &m.Events[i]
		dst = appendJavaStr(dst, e.ID)
		dst = appendI64(dst, e.Timestamp)
		for _, s := range e.strings() {
			dst = appendJavaStr(dst, *s)
		}
		details := e.Details[:min(len(e.Details), maxJavaCount)]
		dst = binary.BigEndian.AppendUint16(dst, uint16(len(details)))
		for _, d := range details {
			dst = appendJavaStr(dst, d.Key)
			dst = appendJavaStr(dst, d.Value)
		}
		dst = appendJavaStr(dst, e.NodeID)
	}
	return dst
}

// JavaAuditExportRequest is the 0xA1 request: str16 format, i64 start,
// i64 end, strlist16 event types, user, resource, result, search; no
// limit or offset (Query.Limit and Query.Offset are left 0).
type JavaAuditExportRequest struct {
	Format string
	Query  AuditQueryRequest
}

// Decode parses a 0xA1 request (minimum 28 bytes) with the AUDIT_EXPORT
// error texts.
func (m *JavaAuditExportRequest) Decode(p []byte) error {
	if len(p) < 28 {
		return secAuditExportError("audit export request too short")
	}
	// 28 bytes always hold the format length, so a short format can only
	// lack its bytes.
	r := reader{p: p}
	f := r.str16()
	if r.bad {
		return secAuditExportError("invalid format")
	}
	m.Format = string(f)
	start, end := r.i64(), r.i64()
	n := r.u16()
	if r.bad {
		return secAuditExportError("invalid query data")
	}
	m.Query = AuditQueryRequest{StartTime: start, EndTime: end}
	var err error
	if m.Query.EventTypes, err = readEventTypes(&r, uint32(n)); err != nil {
		return secAuditExportError("failed to decode query: " + secAuditReason(err))
	}
	if err := m.Query.decodeFilters(&r); err != nil {
		return secAuditExportError("failed to decode query: " + secAuditReason(err))
	}
	return nil
}

// AppendTo appends the 0xA1 request.
func (m *JavaAuditExportRequest) AppendTo(dst []byte) []byte {
	dst = appendJavaStr(dst, m.Format)
	return appendJavaFilters(dst, &m.Query)
}

// JavaAuditExportResponse is the 0xA1 reply: the export document is the
// whole payload, with no prefix.
type JavaAuditExportResponse struct {
	Data []byte
}

// Decode takes a copy of the payload as the document.
func (m *JavaAuditExportResponse) Decode(p []byte) error {
	m.Data = cloneBytes(p)
	return nil
}

// AppendTo appends the document.
func (m *JavaAuditExportResponse) AppendTo(dst []byte) []byte {
	return append(dst, m.Data...)
}
