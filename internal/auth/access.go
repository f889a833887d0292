package auth

// Identity is what the server keeps per connection. The zero value is an
// anonymous connection.
type Identity struct {
	// User is the authenticated user name; "" means anonymous.
	User string
	// FromCert is set when User was mapped from a verified client
	// certificate rather than set by AUTH.
	FromCert bool
	// ClientIP is the host part of the peer address, for the audit trail.
	ClientIP string
}

// Anonymous reports whether the connection has not authenticated.
func (id Identity) Anonymous() bool { return id.User == "" }

// Gate is the authorization an operation needs (§3.5).
type Gate int

// Gates of §3.5; the server's route table assigns one per opcode.
const (
	// GateNone: AUTH, WHOAMI.
	GateNone Gate = iota
	// GateSession: an existing, enabled user, or an anonymous connection
	// when allow_anonymous is on.
	GateSession
	// GateRead: read on the topic (§3.3).
	GateRead
	// GateWrite: write on the topic (§3.3).
	GateWrite
	// GateWriteOrAdminSession: a session whose user has the write or admin
	// permission (REGISTER_SCHEMA).
	GateWriteOrAdminSession
	// GateTopicAdmin: admin permission; CREATE/DELETE_TOPIC, RESET_OFFSET.
	GateTopicAdmin
	// GateUserAdmin: admin permission; user/ACL ops, group admin ops,
	// DELETE_SCHEMA, PURGE_DLQ, audit.
	GateUserAdmin
)

var gateNames = [...]string{"none", "session", "read", "write", "write_or_admin", "topic_admin", "user_admin"}

// String names the gate for logs and metrics.
func (g Gate) String() string {
	if g >= 0 && int(g) < len(gateNames) {
		return gateNames[g]
	}
	return "unknown"
}

// Check decides whether id may pass gate g for topic (ignored by gates
// that are not about a topic). It returns nil, ErrAuthRequired,
// ErrUnauthorized or ErrDisabled, whose texts go on the wire as they are.
// Every gate passes when authentication is disabled (§3.6).
func (s *Store) Check(id Identity, g Gate, topic string) error {
	if !s.Enabled() || g == GateNone {
		return nil
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if id.Anonymous() {
		return s.checkAnonymousLocked(g, topic)
	}
	// Existence and the enabled flag come first for every gate, before the
	// public-topic shortcut: upstream skipped them there, letting deleted
	// and disabled users' sessions keep using public topics (§3.3).
	u := s.users[id.User]
	if u == nil {
		return ErrUnauthorized
	}
	if !u.Enabled {
		return ErrDisabled
	}
	switch g {
	case GateSession:
		return nil
	case GateRead, GateWrite:
		p := PermRead
		if g == GateWrite {
			p = PermWrite
		}
		if s.isPublicLocked(topic) || s.hasPermLocked(u, p) || s.aclAllowsLocked(u, topic) {
			return nil
		}
	case GateWriteOrAdminSession:
		if s.hasPermLocked(u, PermWrite) || s.hasPermLocked(u, PermAdmin) {
			return nil
		}
	case GateTopicAdmin, GateUserAdmin:
		if s.hasPermLocked(u, PermAdmin) {
			return nil
		}
	}
	return ErrUnauthorized
}

func (s *Store) checkAnonymousLocked(g Gate, topic string) error {
	if !s.opts.AllowAnonymous {
		return ErrAuthRequired
	}
	switch g {
	case GateSession:
		return nil
	case GateRead, GateWrite:
		// allow_anonymous lets anonymous clients write public topics too,
		// as upstream does (§3.3).
		if s.isPublicLocked(topic) {
			return nil
		}
	}
	return ErrAuthRequired
}

func (s *Store) isPublicLocked(topic string) bool {
	if a := s.acls[topic]; a != nil {
		return a.Public
	}
	return s.opts.DefaultPublic
}

func (s *Store) hasPermLocked(u *user, perm string) bool {
	for _, rn := range u.Roles {
		if r := s.roles[rn]; r != nil {
			for _, p := range r.Permissions {
				if p == perm {
					return true
				}
			}
		}
	}
	return false
}

// aclAllowsLocked: an ACL allow-list grants read and write (§3.3).
func (s *Store) aclAllowsLocked(u *user, topic string) bool {
	a := s.acls[topic]
	if a == nil {
		return false
	}
	for _, name := range a.AllowedUsers {
		if name == u.Username {
			return true
		}
	}
	for _, ar := range a.AllowedRoles {
		for _, ur := range u.Roles {
			if ar == ur {
				return true
			}
		}
	}
	return false
}

// permissionsLocked is the effective permission list: for each role in
// the user's order, its permissions in role order, first occurrence kept.
func (s *Store) permissionsLocked(roles []string) []string {
	out := []string{}
	for _, rn := range roles {
		r := s.roles[rn]
		if r == nil {
			continue
		}
	next:
		for _, p := range r.Permissions {
			for _, have := range out {
				if have == p {
					continue next
				}
			}
			out = append(out, p)
		}
	}
	return out
}

// WhoAmI returns what the WHOAMI reply shows: whether the connection is
// authenticated (an existing user; a disabled user's open session still
// counts, as upstream), the user name and the effective permissions.
// With authentication disabled nobody is authenticated (§3.6).
func (s *Store) WhoAmI(id Identity) (authenticated bool, username string, permissions []string) {
	if !s.Enabled() || id.Anonymous() {
		return false, "", []string{}
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	u := s.users[id.User]
	if u == nil {
		return false, "", []string{}
	}
	return true, u.Username, s.permissionsLocked(u.Roles)
}
