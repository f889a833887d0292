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
	MaxRoleNameLen = 255
	// secMaxStr16 is the longest str16.
	secMaxStr16 = 1<<16 - 1
	// secMaxJavaStr is the longest string the Java SDK reads correctly: it
	// decodes str16 lengths as signed 16-bit values.
	secMaxJavaStr = 1<<15 - 1
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

// secReader is a bounds-checked big-endian cursor. Every method reports
// false instead of panicking when the payload is too short, so hostile
// length prefixes can never read past the end or allocate their claim.
type secReader struct {
	p   []byte
	off int
}

func (r *secReader) left() int { return len(r.p) - r.off }

func (r *secReader) u8() (byte, bool) {
	if r.left() < 1 {
		return 0, false
	}
	b := r.p[r.off]
	r.off++
	return b, true
}

func (r *secReader) bool() (bool, bool) {
	b, ok := r.u8()
	return b == 1, ok
}

func (r *secReader) u16() (uint16, bool) {
	if r.left() < 2 {
		return 0, false
	}
	v := binary.BigEndian.Uint16(r.p[r.off:])
	r.off += 2
	return v, true
}

func (r *secReader) u32() (uint32, bool) {
	if r.left() < 4 {
		return 0, false
	}
	v := binary.BigEndian.Uint32(r.p[r.off:])
	r.off += 4
	return v, true
}

func (r *secReader) u64() (uint64, bool) {
	if r.left() < 8 {
		return 0, false
	}
	v := binary.BigEndian.Uint64(r.p[r.off:])
	r.off += 8
	return v, true
}

func (r *secReader) bytes(n int) ([]byte, bool) {
	if n < 0 || r.left() < n {
		return nil, false
	}
	b := r.p[r.off : r.off+n]
	r.off += n
	return b, true
}

func (r *secReader) str16() (string, bool) {
	n, ok := r.u16()
	if !ok {
		return "", false
	}
	b, ok := r.bytes(int(n))
	return string(b), ok
}

func (r *secReader) str8() (string, bool) {
	n, ok := r.u8()
	if !ok {
		return "", false
	}
	b, ok := r.bytes(int(n))
	return string(b), ok
}

// strN reads n str16 values. The slice grows with the bytes actually
// present: each entry needs at least two bytes.
func (r *secReader) strN(n uint64) ([]string, bool) {
	out := make([]string, 0, min(n, uint64(r.left()/2)))
	for range n {
		s, ok := r.str16()
		if !ok {
			return nil, false
		}
		out = append(out, s)
	}
	return out, true
}

func (r *secReader) strlist() ([]string, bool) {
	n, ok := r.u32()
	if !ok {
		return nil, false
	}
	return r.strN(uint64(n))
}

func secClamp(s string, max int) string {
	if len(s) > max {
		return s[:max]
	}
	return s
}

// secAppendStr16 appends a str16. Longer strings are truncated so the frame
// stays well-formed; callers keep names below the limit.
func secAppendStr16(dst []byte, s string) []byte {
	s = secClamp(s, secMaxStr16)
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(s)))
	return append(dst, s...)
}

func secAppendBool(dst []byte, b bool) []byte {
	if b {
		return append(dst, 1)
	}
	return append(dst, 0)
}

func secAppendStrList(dst []byte, l []string) []byte {
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(l)))
	for _, s := range l {
		dst = secAppendStr16(dst, s)
	}
	return dst
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
	r := secReader{p: p}
	var ok1, ok2 bool
	m.Username, ok1 = r.str16()
	m.Password, ok2 = r.str16()
	if !ok1 || !ok2 {
		return errAuthFormat
	}
	return nil
}

// AppendTo appends the AUTH request payload.
func (m *AuthRequest) AppendTo(dst []byte) []byte {
	dst = secAppendStr16(dst, m.Username)
	return secAppendStr16(dst, m.Password)
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
	r := secReader{p: p}
	m.Success, _ = r.bool()
	var ok bool
	if m.Username, ok = r.str16(); !ok {
		return ErrInvalidFormat
	}
	n, ok := r.u32()
	if !ok {
		return ErrInvalidFormat
	}
	m.Roles = make([]string, 0, min(uint64(n), uint64(r.left())))
	for range n {
		s, ok := r.str8()
		if !ok {
			return ErrInvalidFormat
		}
		m.Roles = append(m.Roles, s)
	}
	m.Error = ""
	if r.left() > 0 {
		if m.Error, ok = r.str16(); !ok {
			return ErrInvalidFormat
		}
	}
	return nil
}

// AppendTo appends the AUTH reply payload. Role names longer than
// MaxRoleNameLen are truncated (the store refuses them at creation, so
// this only keeps the frame well-formed).
func (m *AuthResponse) AppendTo(dst []byte) []byte {
	dst = secAppendBool(dst, m.Success)
	dst = secAppendStr16(dst, m.Username)
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(m.Roles)))
	for _, role := range m.Roles {
		role = secClamp(role, MaxRoleNameLen)
		dst = append(dst, byte(len(role)))
		dst = append(dst, role...)
	}
	return secAppendStr16(dst, m.Error)
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
	r := secReader{p: p}
	m.Authenticated, _ = r.bool()
	var ok bool
	if m.Username, ok = r.str16(); !ok {
		return ErrInvalidFormat
	}
	if m.Roles, ok = r.strlist(); !ok {
		return ErrInvalidFormat
	}
	if m.Permissions, ok = r.strlist(); !ok {
		return ErrInvalidFormat
	}
	return nil
}

// AppendTo appends the identity payload.
func (m *IdentityResponse) AppendTo(dst []byte) []byte {
	dst = secAppendBool(dst, m.Authenticated)
	dst = secAppendStr16(dst, m.Username)
	dst = secAppendStrList(dst, m.Roles)
	return secAppendStrList(dst, m.Permissions)
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
	r := secReader{p: p}
	var ok1, ok2, ok3 bool
	m.Username, ok1 = r.str16()
	m.Password, ok2 = r.str16()
	m.OldPassword, ok3 = r.str16()
	if !ok1 || !ok2 || !ok3 || r.left() < 5 {
		return errRequestFormat
	}
	var ok bool
	if m.Roles, ok = r.strlist(); !ok {
		return errRequestFormat
	}
	m.Enabled, m.HasEnabled = r.bool()
	return nil
}

// AppendTo appends the user request; the enabled byte only when
// HasEnabled is set.
func (m *UserRequest) AppendTo(dst []byte) []byte {
	dst = secAppendStr16(dst, m.Username)
	dst = secAppendStr16(dst, m.Password)
	dst = secAppendStr16(dst, m.OldPassword)
	dst = secAppendStrList(dst, m.Roles)
	if m.HasEnabled {
		dst = secAppendBool(dst, m.Enabled)
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
	r := secReader{p: p}
	var ok bool
	if m.Name, ok = r.str16(); !ok {
		return errRequestFormat
	}
	return nil
}

// AppendTo appends the name request payload.
func (m *NameRequest) AppendTo(dst []byte) []byte {
	return secAppendStr16(dst, m.Name)
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

func (m *UserInfo) decodeFrom(r *secReader) bool {
	var ok bool
	if m.Username, ok = r.str16(); !ok {
		return false
	}
	if m.Roles, ok = r.strlist(); !ok {
		return false
	}
	if m.Permissions, ok = r.strlist(); !ok {
		return false
	}
	if m.Enabled, ok = r.bool(); !ok {
		return false
	}
	c, ok1 := r.u64()
	u, ok2 := r.u64()
	m.CreatedAt, m.UpdatedAt = int64(c), int64(u)
	return ok1 && ok2
}

// Decode parses a user-info body.
func (m *UserInfo) Decode(p []byte) error {
	if len(p) < 27 {
		return ErrBufferTooSmall
	}
	if !m.decodeFrom(&secReader{p: p}) {
		return ErrInvalidFormat
	}
	return nil
}

// AppendTo appends the user-info body.
func (m *UserInfo) AppendTo(dst []byte) []byte {
	dst = secAppendStr16(dst, m.Username)
	dst = secAppendStrList(dst, m.Roles)
	dst = secAppendStrList(dst, m.Permissions)
	dst = secAppendBool(dst, m.Enabled)
	dst = binary.BigEndian.AppendUint64(dst, uint64(m.CreatedAt))
	return binary.BigEndian.AppendUint64(dst, uint64(m.UpdatedAt))
}

// UserList is the USER_LIST (0x76) reply: u32 count + user-info bodies.
type UserList struct {
	Users []UserInfo
}

// Decode parses a USER_LIST reply.
func (m *UserList) Decode(p []byte) error {
	r := secReader{p: p}
	n, ok := r.u32()
	if !ok {
		return ErrBufferTooSmall
	}
	m.Users = make([]UserInfo, 0, min(uint64(n), uint64(r.left()/27)))
	for range n {
		var u UserInfo
		if !u.decodeFrom(&r) {
			return ErrInvalidFormat
		}
		m.Users = append(m.Users, u)
	}
	return nil
}

// AppendTo appends the USER_LIST reply.
func (m *UserList) AppendTo(dst []byte) []byte {
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(m.Users)))
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
	r := secReader{p: p}
	m.OK, _ = r.bool()
	var ok bool
	if m.Name, ok = r.str16(); !ok {
		return ErrInvalidFormat
	}
	return nil
}

// AppendTo appends the acknowledgement.
func (m *UserAck) AppendTo(dst []byte) []byte {
	dst = secAppendBool(dst, m.OK)
	return secAppendStr16(dst, m.Name)
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
	r := secReader{p: p}
	var ok bool
	if m.Topic, ok = r.str16(); !ok {
		return errRequestFormat
	}
	if m.Public, ok = r.bool(); !ok {
		return errRequestFormat
	}
	if m.AllowedUsers, ok = r.strlist(); !ok {
		return errRequestFormat
	}
	if m.AllowedRoles, ok = r.strlist(); !ok {
		return errRequestFormat
	}
	return nil
}

// AppendTo appends the ACL_SET request.
func (m *ACLSetRequest) AppendTo(dst []byte) []byte {
	dst = secAppendStr16(dst, m.Topic)
	dst = secAppendBool(dst, m.Public)
	dst = secAppendStrList(dst, m.AllowedUsers)
	return secAppendStrList(dst, m.AllowedRoles)
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
	r := secReader{p: p}
	var ok bool
	if m.Topic, ok = r.str16(); !ok {
		return ErrInvalidFormat
	}
	b, ok := r.bytes(3)
	if !ok {
		return ErrInvalidFormat
	}
	m.Exists, m.Public, m.DefaultPublic = b[0] == 1, b[1] == 1, b[2] == 1
	if m.AllowedUsers, ok = r.strlist(); !ok {
		return ErrInvalidFormat
	}
	if m.AllowedRoles, ok = r.strlist(); !ok {
		return ErrInvalidFormat
	}
	return nil
}

// AppendTo appends the ACL_GET reply.
func (m *ACLInfo) AppendTo(dst []byte) []byte {
	dst = secAppendStr16(dst, m.Topic)
	dst = secAppendBool(dst, m.Exists)
	dst = secAppendBool(dst, m.Public)
	dst = secAppendBool(dst, m.DefaultPublic)
	dst = secAppendStrList(dst, m.AllowedUsers)
	return secAppendStrList(dst, m.AllowedRoles)
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
	r := secReader{p: p}
	n, _ := r.u32()
	m.Entries = make([]ACLEntry, 0, min(uint64(n), uint64(r.left()/12)))
	for range n {
		var e ACLEntry
		var ok bool
		if e.Topic, ok = r.str16(); !ok {
			return ErrInvalidFormat
		}
		b, ok := r.bytes(2)
		if !ok {
			return ErrInvalidFormat
		}
		e.Public = b[1] == 1
		if e.AllowedUsers, ok = r.strlist(); !ok {
			return ErrInvalidFormat
		}
		if e.AllowedRoles, ok = r.strlist(); !ok {
			return ErrInvalidFormat
		}
		m.Entries = append(m.Entries, e)
	}
	var ok bool
	if m.DefaultPublic, ok = r.bool(); !ok {
		return ErrInvalidFormat
	}
	return nil
}

// AppendTo appends the ACL_LIST reply.
func (m *ACLList) AppendTo(dst []byte) []byte {
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(m.Entries)))
	for _, e := range m.Entries {
		dst = secAppendStr16(dst, e.Topic)
		dst = append(dst, 1)
		dst = secAppendBool(dst, e.Public)
		dst = secAppendStrList(dst, e.AllowedUsers)
		dst = secAppendStrList(dst, e.AllowedRoles)
	}
	return secAppendBool(dst, m.DefaultPublic)
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
	r := secReader{p: p}
	n, ok := r.u32()
	if !ok {
		return ErrBufferTooSmall
	}
	m.Roles = make([]RoleInfo, 0, min(uint64(n), uint64(r.left()/8)))
	for range n {
		var ri RoleInfo
		var ok1, ok2, ok3 bool
		ri.Name, ok1 = r.str16()
		ri.Permissions, ok2 = r.strlist()
		ri.Description, ok3 = r.str16()
		if !ok1 || !ok2 || !ok3 {
			return ErrInvalidFormat
		}
		m.Roles = append(m.Roles, ri)
	}
	return nil
}

// AppendTo appends the ROLE_LIST reply.
func (m *RoleList) AppendTo(dst []byte) []byte {
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(m.Roles)))
	for _, ri := range m.Roles {
		dst = secAppendStr16(dst, ri.Name)
		dst = secAppendStrList(dst, ri.Permissions)
		dst = secAppendStr16(dst, ri.Description)
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
	r := secReader{p: p}
	s, _ := r.u64()
	e, _ := r.u64()
	n, _ := r.u32()
	m.StartTime, m.EndTime = int64(s), int64(e)
	var err error
	if m.EventTypes, err = secReadEventTypes(&r, uint64(n)); err != nil {
		return err
	}
	if err := m.decodeFilters(&r); err != nil {
		return err
	}
	return m.decodePage(&r)
}

func secReadEventTypes(r *secReader, n uint64) ([]string, error) {
	out := make([]string, 0, min(n, uint64(r.left()/2)))
	for range n {
		l, ok := r.u16()
		if !ok {
			return nil, secAuditQueryError("invalid event type length")
		}
		b, ok := r.bytes(int(l))
		if !ok {
			return nil, secAuditQueryError("invalid event type")
		}
		out = append(out, string(b))
	}
	return out, nil
}

func (m *AuditQueryRequest) decodeFilters(r *secReader) error {
	for _, f := range []struct {
		name string
		dst  *string
	}{{"user", &m.User}, {"resource", &m.Resource}, {"result", &m.Result}, {"search", &m.Search}} {
		l, ok := r.u16()
		if !ok {
			return secAuditQueryError("missing " + f.name + " length")
		}
		b, ok := r.bytes(int(l))
		if !ok {
			return secAuditQueryError("invalid " + f.name)
		}
		*f.dst = string(b)
	}
	return nil
}

func (m *AuditQueryRequest) decodePage(r *secReader) error {
	l, ok := r.u32()
	if !ok {
		return secAuditQueryError("missing limit")
	}
	o, ok := r.u32()
	if !ok {
		return secAuditQueryError("missing offset")
	}
	m.Limit, m.Offset = int32(l), int32(o)
	return nil
}

// AppendTo appends the AUDIT_QUERY request.
func (m *AuditQueryRequest) AppendTo(dst []byte) []byte {
	dst = binary.BigEndian.AppendUint64(dst, uint64(m.StartTime))
	dst = binary.BigEndian.AppendUint64(dst, uint64(m.EndTime))
	dst = secAppendStrList(dst, m.EventTypes)
	for _, s := range []string{m.User, m.Resource, m.Result, m.Search} {
		dst = secAppendStr16(dst, s)
	}
	dst = binary.BigEndian.AppendUint32(dst, uint32(m.Limit))
	return binary.BigEndian.AppendUint32(dst, uint32(m.Offset))
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
	r := secReader{p: p}
	var ok bool
	if m.ID, ok = r.str16(); !ok {
		return ErrInvalidFormat
	}
	ts, ok := r.u64()
	if !ok {
		return ErrInvalidFormat
	}
	m.Timestamp = int64(ts)
	for _, s := range append(m.strings(), &m.NodeID) {
		if *s, ok = r.str16(); !ok {
			return ErrInvalidFormat
		}
	}
	n, ok := r.u32()
	if !ok {
		return ErrInvalidFormat
	}
	if m.Details, ok = secReadDetails(&r, uint64(n)); !ok {
		return ErrInvalidFormat
	}
	return nil
}

func secReadDetails(r *secReader, n uint64) ([]AuditDetail, bool) {
	out := make([]AuditDetail, 0, min(n, uint64(r.left()/4)))
	for range n {
		k, ok1 := r.str16()
		v, ok2 := r.str16()
		if !ok1 || !ok2 {
			return nil, false
		}
		out = append(out, AuditDetail{Key: k, Value: v})
	}
	return out, true
}

// AppendTo appends the 0x80 event body (without its u32 length prefix).
func (m *AuditEvent) AppendTo(dst []byte) []byte {
	dst = secAppendStr16(dst, m.ID)
	dst = binary.BigEndian.AppendUint64(dst, uint64(m.Timestamp))
	for _, s := range m.strings() {
		dst = secAppendStr16(dst, *s)
	}
	dst = secAppendStr16(dst, m.NodeID)
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(m.Details)))
	for _, d := range m.Details {
		dst = secAppendStr16(dst, d.Key)
		dst = secAppendStr16(dst, d.Value)
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
	r := secReader{p: p}
	n, _ := r.u32()
	m.Events = make([]AuditEvent, 0, min(uint64(n), uint64(r.left()/4)))
	for range n {
		l, ok := r.u32()
		if !ok {
			return ErrInvalidFormat
		}
		body, ok := r.bytes(int(min(l, uint32(r.left()+1))))
		if !ok {
			return ErrInvalidFormat
		}
		var e AuditEvent
		if err := e.Decode(body); err != nil {
			return err
		}
		m.Events = append(m.Events, e)
	}
	t, ok1 := r.u32()
	more, ok2 := r.bool()
	if !ok1 || !ok2 {
		return ErrInvalidFormat
	}
	m.TotalCount, m.HasMore = int32(t), more
	return nil
}

// AppendTo appends the AUDIT_QUERY reply.
func (m *AuditQueryResponse) AppendTo(dst []byte) []byte {
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(m.Events)))
	for i := range m.Events {
		at := len(dst)
		dst = append(dst, 0, 0, 0, 0)
		dst = m.Events[i].AppendTo(dst)
		binary.BigEndian.PutUint32(dst[at:], uint32(len(dst)-at-4))
	}
	dst = binary.BigEndian.AppendUint32(dst, uint32(m.TotalCount))
	return secAppendBool(dst, m.HasMore)
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
	r := secReader{p: p}
	n, _ := r.u32()
	q, ok := r.bytes(int(min(n, uint32(r.left()+1))))
	if !ok {
		return secAuditExportError("invalid query data")
	}
	if err := m.Query.Decode(q); err != nil {
		return secAuditExportError("failed to decode query: " + secAuditReason(err))
	}
	l, ok := r.u16()
	if !ok {
		return secAuditExportError("missing format length")
	}
	f, ok := r.bytes(int(l))
	if !ok {
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
	return secAppendStr16(dst, m.Format)
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
	r := secReader{p: p}
	var ok bool
	if m.Format, ok = r.str16(); !ok {
		return ErrInvalidFormat
	}
	n, ok := r.u32()
	if !ok {
		return ErrInvalidFormat
	}
	d, ok := r.bytes(int(min(n, uint32(r.left()+1))))
	if !ok {
		return ErrInvalidFormat
	}
	m.Data = append([]byte(nil), d...)
	return nil
}

// AppendTo appends the AUDIT_EXPORT reply.
func (m *AuditExportResponse) AppendTo(dst []byte) []byte {
	dst = secAppendStr16(dst, m.Format)
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(m.Data)))
	return append(dst, m.Data...)
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
	r := secReader{p: p}
	s, _ := r.u64()
	e, _ := r.u64()
	n, _ := r.u16()
	m.StartTime, m.EndTime = int64(s), int64(e)
	var err error
	if m.EventTypes, err = secReadEventTypes(&r, uint64(n)); err != nil {
		return err
	}
	if err := m.decodeFilters(&r); err != nil {
		return err
	}
	return m.decodePage(&r)
}

func secAppendJavaStr(dst []byte, s string) []byte {
	return secAppendStr16(dst, secClamp(s, secMaxJavaStr))
}

func secAppendJavaFilters(dst []byte, q *AuditQueryRequest) []byte {
	dst = binary.BigEndian.AppendUint64(dst, uint64(q.StartTime))
	dst = binary.BigEndian.AppendUint64(dst, uint64(q.EndTime))
	dst = binary.BigEndian.AppendUint16(dst, uint16(min(len(q.EventTypes), 1<<15-1)))
	for _, t := range q.EventTypes[:min(len(q.EventTypes), 1<<15-1)] {
		dst = secAppendJavaStr(dst, t)
	}
	for _, s := range []string{q.User, q.Resource, q.Result, q.Search} {
		dst = secAppendJavaStr(dst, s)
	}
	return dst
}

// AppendTo appends the 0xA0 request.
func (m *JavaAuditQueryRequest) AppendTo(dst []byte) []byte {
	dst = secAppendJavaFilters(dst, &m.AuditQueryRequest)
	dst = binary.BigEndian.AppendUint32(dst, uint32(m.Limit))
	return binary.BigEndian.AppendUint32(dst, uint32(m.Offset))
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
	r := secReader{p: p}
	t, _ := r.u32()
	m.HasMore, _ = r.bool()
	n, _ := r.u32()
	m.TotalCount = int32(t)
	m.Events = make([]AuditEvent, 0, min(uint64(n), uint64(r.left()/40)))
	for range n {
		var e AuditEvent
		var ok bool
		if e.ID, ok = r.str16(); !ok {
			return ErrInvalidFormat
		}
		ts, ok := r.u64()
		if !ok {
			return ErrInvalidFormat
		}
		e.Timestamp = int64(ts)
		for _, s := range e.strings() {
			if *s, ok = r.str16(); !ok {
				return ErrInvalidFormat
			}
		}
		dn, ok := r.u16()
		if !ok {
			return ErrInvalidFormat
		}
		if e.Details, ok = secReadDetails(&r, uint64(dn)); !ok {
			return ErrInvalidFormat
		}
		if e.NodeID, ok = r.str16(); !ok {
			return ErrInvalidFormat
		}
		m.Events = append(m.Events, e)
	}
	return nil
}

// AppendTo appends the 0xA0 reply.
func (m *JavaAuditQueryResponse) AppendTo(dst []byte) []byte {
	dst = binary.BigEndian.AppendUint32(dst, uint32(m.TotalCount))
	dst = secAppendBool(dst, m.HasMore)
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(m.Events)))
	for i := range m.Events {
		e := &m.Events[i]
		dst = secAppendJavaStr(dst, e.ID)
		dst = binary.BigEndian.AppendUint64(dst, uint64(e.Timestamp))
		for _, s := range e.strings() {
			dst = secAppendJavaStr(dst, *s)
		}
		details := e.Details[:min(len(e.Details), 1<<15-1)]
		dst = binary.BigEndian.AppendUint16(dst, uint16(len(details)))
		for _, d := range details {
			dst = secAppendJavaStr(dst, d.Key)
			dst = secAppendJavaStr(dst, d.Value)
		}
		dst = secAppendJavaStr(dst, e.NodeID)
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
	r := secReader{p: p}
	l, _ := r.u16()
	f, ok := r.bytes(int(l))
	if !ok {
		return secAuditExportError("invalid format")
	}
	m.Format = string(f)
	s, ok1 := r.u64()
	e, ok2 := r.u64()
	n, ok3 := r.u16()
	if !ok1 || !ok2 || !ok3 {
		return secAuditExportError("invalid query data")
	}
	m.Query = AuditQueryRequest{StartTime: int64(s), EndTime: int64(e)}
	var err error
	if m.Query.EventTypes, err = secReadEventTypes(&r, uint64(n)); err != nil {
		return secAuditExportError("failed to decode query: " + secAuditReason(err))
	}
	if err := m.Query.decodeFilters(&r); err != nil {
		return secAuditExportError("failed to decode query: " + secAuditReason(err))
	}
	return nil
}

// AppendTo appends the 0xA1 request.
func (m *JavaAuditExportRequest) AppendTo(dst []byte) []byte {
	dst = secAppendJavaStr(dst, m.Format)
	return secAppendJavaFilters(dst, &m.Query)
}

// JavaAuditExportResponse is the 0xA1 reply: the export document is the
// whole payload, with no prefix.
type JavaAuditExportResponse struct {
	Data []byte
}

// Decode takes a copy of the payload as the document.
func (m *JavaAuditExportResponse) Decode(p []byte) error {
	m.Data = append([]byte(nil), p...)
	return nil
}

// AppendTo appends the document.
func (m *JavaAuditExportResponse) AppendTo(dst []byte) []byte {
	return append(dst, m.Data...)
}
