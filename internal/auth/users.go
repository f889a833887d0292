package auth

import (
	"fmt"
	"sort"
	"time"
	"unicode"
	"unicode/utf8"

	"go.uber.org/zap"
	"golang.org/x/crypto/bcrypt"

	"github.com/flymq/flymq/internal/audit"
)

// UserInfo is a user as the USER_GET / USER_LIST replies show it; it never
// carries the password hash.
type UserInfo struct {
	Username    string
	Roles       []string
	Permissions []string // effective, §4.1 order
	Enabled     bool
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

// Authenticate checks a user name and password for AUTH (§4.1). It
// returns the user's roles, or an error whose text is the in-band failure
// text: ErrBadCredentials (unknown user and wrong password alike),
// ErrDisabled (only once the password was right, so the flag does not
// reveal which names exist), or ErrTooManyAttempts when peerIP is over
// the failure limit (the password is then not checked at all). With
// authentication disabled it returns nil, nil: the server echoes the name
// and does not mark the connection authenticated (§3.6).
func (s *Store) Authenticate(peerIP, username, password string) ([]string, error) {
	if !s.Enabled() {
		return nil, nil
	}
	roles, err := s.authenticate(peerIP, username, password)
	ev := audit.Event{Type: audit.TypeAuthSuccess, User: username, ClientIP: peerIP,
		Action: "authenticate", Result: audit.ResultSuccess}
	if err != nil {
		ev.Type, ev.Result = audit.TypeAuthFailure, audit.ResultFailure
		ev.Details = map[string]string{"reason": err.Error()}
		s.metrics.authFailure(err)
	} else {
		ev.Details = map[string]string{"roles": fmt.Sprint(roles)}
		s.metrics.authSuccess.Inc()
	}
	s.record(ev)
	return roles, err
}

func (s *Store) authenticate(peerIP, username, password string) ([]string, error) {
	if !s.limiter.allow(peerIP, s.now()) {
		return nil, ErrTooManyAttempts
	}
	roles, err := s.verify(username, password)
	if err != nil {
		s.limiter.fail(peerIP, s.now())
	}
	return roles, err
}

// verify runs bcrypt for every attempt, against a dummy hash for unknown
// names, so that timing does not tell which users exist.
func (s *Store) verify(username, password string) ([]string, error) {
	s.mu.RLock()
	u := s.users[username]
	hash := s.dummyHash
	var enabled bool
	var roles []string
	if u != nil {
		hash = []byte(u.PasswordHash)
		enabled = u.Enabled
		roles = append([]string{}, u.Roles...)
	}
	s.mu.RUnlock()
	// bcrypt compares the derived hashes in constant time.
	if s.compareHash(hash, []byte(password)) != nil || u == nil {
		return nil, ErrBadCredentials
	}
	if !enabled {
		return nil, ErrDisabled
	}
	return roles, nil
}

// checkNewPassword applies the rules for a new password: non-empty,
// at most 72 bytes (bcrypt), at least the configured minimum.
func (s *Store) checkNewPassword(pw string) error {
	switch {
	case pw == "":
		return ErrCredentialsRequired
	case len(pw) > MaxPasswordLen:
		return ErrPasswordTooLong
	case len(pw) < s.minPass:
		return passwordTooShort(s.minPass)
	}
	return nil
}

func (s *Store) hashPassword(pw string) (string, error) {
	h, err := bcrypt.GenerateFromPassword([]byte(pw), s.cost)
	if err != nil {
		return "", fmt.Errorf("failed to hash password: %w", err)
	}
	return string(h), nil
}

// CreateUser adds an enabled user with the roles as sent (unknown role
// names are kept and grant nothing; duplicates are kept) (§5.1). The
// caller has passed GateUserAdmin.
func (s *Store) CreateUser(caller Identity, username, password string, roles []string) error {
	err := s.createUser(username, password, roles)
	ev := s.changeEvent(caller, audit.TypeUserCreate, "user_create", username, err)
	if err == nil {
		ev.Details = map[string]string{"roles": fmt.Sprint(roles)}
	}
	s.record(ev)
	return err
}

func (s *Store) createUser(username, password string, roles []string) error {
	if !s.Enabled() {
		return ErrAuthDisabled
	}
	if username == "" || password == "" {
		return ErrCredentialsRequired
	}
	if err := checkUserName(username); err != nil {
		return err
	}
	if err := checkRoleNames(roles); err != nil {
		return err
	}
	s.mu.RLock()
	_, exists := s.users[username]
	s.mu.RUnlock()
	if exists {
		return &UserError{User: username, Err: ErrUserExists}
	}
	if err := s.checkNewPassword(password); err != nil {
		return err
	}
	hash, err := s.hashPassword(password)
	if err != nil {
		return err
	}
	now := s.now().UTC()
	u := &user{Username: username, PasswordHash: hash, Roles: append([]string{}, roles...),
		Enabled: true, CreatedAt: now, UpdatedAt: now}
	s.mu.Lock()
	defer s.mu.Unlock()
	// Checked again: bcrypt ran without the lock.
	if _, exists := s.users[username]; exists {
		return &UserError{User: username, Err: ErrUserExists}
	}
	s.users[username] = u
	if err := s.saveUsersLocked(); err != nil {
		delete(s.users, username)
		return err
	}
	return nil
}

// DeleteUser removes a user (§5.2). Open sessions of that user get
// "unauthorized" from their next gated request.
func (s *Store) DeleteUser(caller Identity, username string) error {
	err := s.deleteUser(caller, username)
	s.record(s.changeEvent(caller, audit.TypeUserDelete, "user_delete", username, err))
	return err
}

func (s *Store) deleteUser(caller Identity, username string) error {
	if !s.Enabled() {
		return ErrAuthDisabled
	}
	if username == caller.User {
		return ErrCannotDeleteSelf
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.users[username]
	if u == nil {
		return &UserError{User: username, Err: ErrUserNotFound}
	}
	delete(s.users, username)
	if err := s.saveUsersLocked(); err != nil {
		s.users[username] = u
		return err
	}
	return nil
}

// UpdateUser changes roles and the enabled flag (§5.3, required
// behaviour): an empty role list leaves the roles unchanged, a nil
// enabled leaves the flag unchanged.
func (s *Store) UpdateUser(caller Identity, username string, roles []string, enabled *bool) error {
	err := s.updateUser(username, roles, enabled)
	ev := s.changeEvent(caller, audit.TypeUserUpdate, "user_update", username, err)
	if err == nil {
		ev.Details = map[string]string{}
		if len(roles) > 0 {
			ev.Details["roles"] = fmt.Sprint(roles)
		}
		if enabled != nil {
			ev.Details["enabled"] = fmt.Sprint(*enabled)
		}
	}
	s.record(ev)
	return err
}

func (s *Store) updateUser(username string, roles []string, enabled *bool) error {
	if !s.Enabled() {
		return ErrAuthDisabled
	}
	if err := checkRoleNames(roles); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.users[username]
	if u == nil {
		return &UserError{User: username, Err: ErrUserNotFound}
	}
	old := *u
	if len(roles) > 0 {
		u.Roles = append([]string{}, roles...)
	}
	if enabled != nil {
		u.Enabled = *enabled
	}
	u.UpdatedAt = s.now().UTC()
	if err := s.saveUsersLocked(); err != nil {
		*u = old
		return err
	}
	return nil
}

// ChangePassword implements PASSWORD_CHANGE (§5.6). When username is the
// caller's own (also "" for an anonymous caller), oldPassword must verify
// like AUTH, else ErrInvalidCurrentPassword; otherwise the caller needs
// GateUserAdmin and no old password. The new password must pass the
// length rules; an empty one is refused.
func (s *Store) ChangePassword(caller Identity, username, oldPassword, newPassword string) error {
	err := s.changePassword(caller, username, oldPassword, newPassword)
	s.record(s.changeEvent(caller, audit.TypeUserPassword, "password_change", username, err))
	return err
}

func (s *Store) changePassword(caller Identity, username, oldPassword, newPassword string) error {
	if !s.Enabled() {
		return ErrAuthDisabled
	}
	if username == caller.User {
		if _, err := s.verify(username, oldPassword); err != nil {
			return ErrInvalidCurrentPassword
		}
	} else if err := s.Check(caller, GateUserAdmin, ""); err != nil {
		return err
	}
	s.mu.RLock()
	_, exists := s.users[username]
	s.mu.RUnlock()
	if !exists {
		return &UserError{User: username, Err: ErrUserNotFound}
	}
	if err := s.checkNewPassword(newPassword); err != nil {
		return err
	}
	hash, err := s.hashPassword(newPassword)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.users[username]
	if u == nil {
		return &UserError{User: username, Err: ErrUserNotFound}
	}
	old := *u
	u.PasswordHash, u.UpdatedAt = hash, s.now().UTC()
	if err := s.saveUsersLocked(); err != nil {
		*u = old
		return err
	}
	return nil
}

// GetUser returns one user with its effective permissions (§5.5).
func (s *Store) GetUser(username string) (UserInfo, error) {
	if !s.Enabled() {
		return UserInfo{}, ErrAuthDisabled
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	u := s.users[username]
	if u == nil {
		return UserInfo{}, &UserError{User: username, Err: ErrUserNotFound}
	}
	return s.infoLocked(u), nil
}

// Users lists every user sorted by name, with effective permissions.
func (s *Store) Users() ([]UserInfo, error) {
	if !s.Enabled() {
		return nil, ErrAuthDisabled
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]UserInfo, 0, len(s.users))
	for _, u := range s.users {
		out = append(out, s.infoLocked(u))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Username < out[j].Username })
	return out, nil
}

func (s *Store) infoLocked(u *user) UserInfo {
	return UserInfo{Username: u.Username, Roles: append([]string{}, u.Roles...),
		Permissions: s.permissionsLocked(u.Roles), Enabled: u.Enabled,
		CreatedAt: u.CreatedAt, UpdatedAt: u.UpdatedAt}
}

// SetACL replaces the topic's ACL entry (§6.1). The topic need not exist.
func (s *Store) SetACL(caller Identity, topic string, public bool, users, roles []string) error {
	err := s.setACL(topic, public, users, roles)
	ev := s.changeEvent(caller, audit.TypeACLSet, "acl_set", topic, err)
	if err == nil {
		ev.Details = map[string]string{"public": fmt.Sprint(public),
			"allowed_users": fmt.Sprint(users), "allowed_roles": fmt.Sprint(roles)}
	}
	s.record(ev)
	return err
}

func (s *Store) setACL(topic string, public bool, users, roles []string) error {
	if !s.Enabled() {
		return ErrAuthDisabled
	}
	if public && !s.opts.AllowAnonymous {
		return ErrPublicNeedsAnonymous
	}
	a := &ACL{Topic: topic, Public: public, AllowedUsers: append([]string{}, users...),
		AllowedRoles: append([]string{}, roles...)}
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.acls[topic]
	s.acls[topic] = a
	if err := s.saveACLsLocked(); err != nil {
		s.restoreACLLocked(topic, old)
		return err
	}
	return nil
}

func (s *Store) restoreACLLocked(topic string, old *ACL) {
	if old == nil {
		delete(s.acls, topic)
	} else {
		s.acls[topic] = old
	}
}

// GetACL returns the topic's entry and whether it exists.
func (s *Store) GetACL(topic string) (ACL, bool, error) {
	if !s.Enabled() {
		return ACL{}, false, ErrAuthDisabled
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	a := s.acls[topic]
	if a == nil {
		return ACL{Topic: topic, AllowedUsers: []string{}, AllowedRoles: []string{}}, false, nil
	}
	return cloneACL(a), true, nil
}

// DeleteACL removes the topic's entry; a missing one is not an error.
func (s *Store) DeleteACL(caller Identity, topic string) error {
	err := s.deleteACL(topic)
	s.record(s.changeEvent(caller, audit.TypeACLDelete, "acl_delete", topic, err))
	return err
}

func (s *Store) deleteACL(topic string) error {
	if !s.Enabled() {
		return ErrAuthDisabled
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.acls[topic]
	if old == nil {
		return nil
	}
	delete(s.acls, topic)
	if err := s.saveACLsLocked(); err != nil {
		s.acls[topic] = old
		return err
	}
	return nil
}

// ACLs lists every entry sorted by topic.
func (s *Store) ACLs() ([]ACL, error) {
	if !s.Enabled() {
		return nil, ErrAuthDisabled
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]ACL, 0, len(s.acls))
	for _, a := range s.acls {
		out = append(out, cloneACL(a))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Topic < out[j].Topic })
	return out, nil
}

func cloneACL(a *ACL) ACL {
	return ACL{Topic: a.Topic, Public: a.Public, AllowedUsers: append([]string{}, a.AllowedUsers...),
		AllowedRoles: append([]string{}, a.AllowedRoles...)}
}

// changeEvent builds the audit event of a user or ACL change by caller
// on resource; a failure carries the error text (never a password).
func (s *Store) changeEvent(caller Identity, typ, action, resource string, err error) audit.Event {
	ev := audit.Event{Type: typ, User: caller.User, ClientIP: caller.ClientIP, Resource: resource,
		Action: action, Result: audit.ResultSuccess}
	if err != nil {
		ev.Result = audit.ResultFailure
		ev.Details = map[string]string{"error": err.Error()}
	}
	return ev
}

func (s *Store) record(ev audit.Event) {
	if s.opts.Audit == nil || !s.Enabled() {
		return
	}
	if ev.NodeID == "" {
		ev.NodeID = s.opts.NodeID
	}
	s.opts.Audit.Record(ev)
	if ev.Result != audit.ResultSuccess {
		s.log.Debug("auth event", zap.String("type", ev.Type), zap.String("user", ev.User),
			zap.String("client-ip", ev.ClientIP), zap.String("result", ev.Result))
	}
}

// maxUserNameLen bounds user names: they appear in replies, audit events
// and certificate mappings, never in paths.
const maxUserNameLen = 255

// checkUserName refuses names no operator could type or read back:
// invalid UTF-8, control characters, backslashes and over-long names.
func checkUserName(name string) error {
	if len(name) > maxUserNameLen {
		return fmt.Errorf("%w: %d bytes, at most %d allowed", ErrInvalidUserName, len(name), maxUserNameLen)
	}
	if !utf8.ValidString(name) {
		return fmt.Errorf("%w: not valid UTF-8", ErrInvalidUserName)
	}
	for i, r := range name {
		switch {
		case r == 0:
			return fmt.Errorf("%w: NUL byte at %d", ErrInvalidUserName, i)
		case r == '\\':
			return fmt.Errorf("%w: backslash at %d", ErrInvalidUserName, i)
		case !unicode.IsPrint(r):
			return fmt.Errorf("%w: non-printable character %U at %d", ErrInvalidUserName, r, i)
		}
	}
	return nil
}
