// Package auth holds the broker's users, roles and topic ACLs and makes
// every access decision (security-and-advanced.md §3).
//
// Users and ACLs live in two sealed files under Options.Dir (users.sealed,
// acls.sealed), written atomically on every change. With a keyring the
// files are AES-256-GCM sealed, so neither user names, password hashes nor
// topic names are readable on disk. Passwords are bcrypt hashes (cost 10),
// compatible with the old server's user file, which is imported once on
// first start together with its ACL file.
//
// Identity is per connection; the store re-reads existence, roles and the
// enabled flag on every check so that changes apply to open sessions at
// once (§3.1).
package auth

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"golang.org/x/crypto/bcrypt"

	"github.com/flymq/flymq/internal/audit"
	"github.com/flymq/flymq/internal/crypto"
)

// Permission strings (§3.2).
const (
	PermRead  = "read"
	PermWrite = "write"
	PermAdmin = "admin"
)

// Limits.
const (
	// BcryptCost is the hashing cost, as upstream ($2a$10$).
	BcryptCost = 10
	// MaxPasswordLen is bcrypt's input limit.
	MaxPasswordLen = 72
	// MaxRoleNameLen is the longest role name the AUTH reply can carry.
	MaxRoleNameLen = 255
	// DefaultMinPasswordLength applies when Options.MinPasswordLength ≤ 0.
	DefaultMinPasswordLength = 8
	// recommendedMinPasswordLength is what the security guide advises; a
	// lower minimum is allowed but warned about at start.
	recommendedMinPasswordLength = 12
	// defaultFailureWindow applies when Options.FailureWindow is 0.
	defaultFailureWindow = time.Minute
)

// Sealed file names.
const (
	usersFile = "users.sealed"
	aclsFile  = "acls.sealed"
)

// Sealed-blob purposes of the user and ACL files, bound as AAD so one
// store's file cannot be swapped for another's. internal/keys re-seals
// both files with them: changing one strands the existing file.
const (
	UsersPurpose = "auth/users"
	ACLsPurpose  = "auth/acls"
)

// Errors. Their texts are the exact wire texts of §2.3.
var (
	ErrAuthRequired   = errors.New("authentication required")
	ErrUnauthorized   = errors.New("unauthorized")
	ErrDisabled       = errors.New("user account is disabled")
	ErrAuthDisabled   = errors.New("authentication is not enabled")
	ErrBadCredentials = errors.New("invalid username or password")
	// ErrTooManyAttempts refuses an AUTH from a peer over the failure limit
	// without looking at the password.
	ErrTooManyAttempts        = errors.New("too many failed attempts, try again later")
	ErrCredentialsRequired    = errors.New("username and password are required")
	ErrUserExists             = errors.New("user already exists")
	ErrUserNotFound           = errors.New("user not found")
	ErrCannotDeleteSelf       = errors.New("cannot delete your own account")
	ErrInvalidCurrentPassword = errors.New("invalid current password")
	// ErrPasswordTooLong has bcrypt's text behind upstream's prefix.
	ErrPasswordTooLong  = fmt.Errorf("failed to hash password: %w", bcrypt.ErrPasswordTooLong)
	ErrPasswordTooShort = errors.New("password too short")
	ErrRoleNameTooLong  = errors.New("role name exceeds 255 bytes")
	// ErrInvalidUserName: control characters, a backslash, invalid UTF-8
	// or more than 255 bytes.
	ErrInvalidUserName      = errors.New("invalid user name")
	ErrPublicNeedsAnonymous = errors.New("cannot make topic public because anonymous access " +
		"is disabled in server configuration")
)

// UserError carries the user name in the §2.3 texts `user "U" already
// exists` and `user "U" not found`; errors.Is matches ErrUserExists or
// ErrUserNotFound.
type UserError struct {
	User string
	Err  error
}

func (e *UserError) Error() string {
	if e.Err == ErrUserExists {
		return fmt.Sprintf("user %q already exists", e.User)
	}
	return fmt.Sprintf("user %q not found", e.User)
}

func (e *UserError) Unwrap() error { return e.Err }

// passwordTooShort names the configured minimum, not the password.
func passwordTooShort(min int) error {
	return fmt.Errorf("%w: at least %d bytes required", ErrPasswordTooShort, min)
}

// AuditSink receives the security events the store produces; *audit.Log
// implements it. nil means no audit trail.
type AuditSink interface {
	Record(ev audit.Event)
}

// Options configures a Store.
type Options struct {
	// Enabled turns authentication on. Off, every gate passes and no file
	// is read or written (§3.6).
	Enabled bool
	// AllowAnonymous lets connections without AUTH use public topics
	// (read and write, as upstream) and session-gated ops.
	AllowAnonymous bool
	// DefaultPublic makes topics without an ACL public. The config always
	// wins over an imported ACL file's value.
	DefaultPublic bool
	// AdminUsername and AdminPassword create the first admin when the
	// store holds no user at all (first start); never a default password.
	AdminUsername string
	AdminPassword string
	// MinPasswordLength for new passwords; ≤ 0 means 8. Below 12 is
	// warned about at start.
	MinPasswordLength int
	// UserFile and ACLFile are an old server's plain JSON stores,
	// imported once when the sealed store does not exist yet.
	UserFile, ACLFile string
	// Dir holds the sealed store (e.g. <data_dir>/auth).
	Dir string
	// Keyring seals the files; nil writes them unsealed.
	Keyring *crypto.Keyring
	// MaxFailures failed AUTHs per peer IP within FailureWindow refuse
	// further attempts until the window passes; 0 disables the limit.
	MaxFailures   int
	FailureWindow time.Duration
	Logger        *zap.Logger
	Registerer    prometheus.Registerer
	Audit         AuditSink
	// NodeID is put into audit events.
	NodeID string
	// Now is the clock; nil means time.Now.
	Now func() time.Time

	// bcryptCost overrides BcryptCost; set only by this package's tests,
	// which would otherwise spend minutes hashing under -race.
	bcryptCost int
}

// Role is a named set of permissions.
type Role struct {
	Name        string   `json:"name"`
	Permissions []string `json:"permissions"`
	Description string   `json:"description"`
}

// builtinRoles in the order ROLE_LIST sends them, with upstream's texts.
var builtinRoles = []Role{
	{Name: "admin", Permissions: []string{PermRead, PermWrite, PermAdmin}, Description: "Full access to all operations"},
	{Name: "producer", Permissions: []string{PermWrite}, Description: "Write-only access (produce messages)"},
	{Name: "consumer", Permissions: []string{PermRead}, Description: "Read-only access (consume messages)"},
	{Name: "guest", Permissions: []string{}, Description: "Access to public topics only"},
}

// user is one stored account; the JSON shape is the old server's user
// file entry (§3.7), so importing is decoding.
type user struct {
	Username     string    `json:"username"`
	PasswordHash string    `json:"password_hash"`
	Roles        []string  `json:"roles"`
	Enabled      bool      `json:"enabled"`
	CreatedAt    time.Time `json:"created_at"`
	UpdatedAt    time.Time `json:"updated_at"`
}

// userFile is the old server's user file layout and our sealed payload.
type userFile struct {
	Users map[string]*user `json:"users"`
	Roles map[string]*Role `json:"roles,omitempty"`
}

// ACL is the access list of one topic. Entries are keyed by the exact
// topic name and only add access (§3.3).
type ACL struct {
	Topic        string   `json:"topic"`
	Public       bool     `json:"public"`
	AllowedUsers []string `json:"allowed_users,omitempty"`
	AllowedRoles []string `json:"allowed_roles,omitempty"`
}

// aclFile is the old server's ACL file layout and our sealed payload.
type aclFile struct {
	ACLs          map[string]*ACL `json:"acls"`
	DefaultPublic *bool           `json:"default_public,omitempty"`
}

// Store is the user, role and ACL store. It is safe for concurrent use.
// A nil *Store behaves as a store with authentication disabled.
type Store struct {
	opts    Options
	log     *zap.Logger
	now     func() time.Time
	minPass int
	cost    int
	metrics *metrics
	limiter *limiter
	// dummyHash is compared against for unknown users so that they cost
	// the same bcrypt work as a wrong password (§3.7).
	dummyHash []byte
	// compareHash is bcrypt.CompareHashAndPassword; tests count calls to
	// prove that a rate-limited attempt never reaches it.
	compareHash func(hash, password []byte) error

	mu    sync.RWMutex
	users map[string]*user
	roles map[string]*Role // built-ins merged with file-defined roles
	acls  map[string]*ACL
}

// Open loads the store from opts.Dir, importing the old plain files on
// first start and creating the first admin when the store has no user.
func Open(opts Options) (*Store, error) {
	s := &Store{
		opts:  opts,
		log:   opts.Logger,
		now:   opts.Now,
		users: map[string]*user{},
		roles: map[string]*Role{},
		acls:  map[string]*ACL{},

		compareHash: bcrypt.CompareHashAndPassword,
	}
	if s.log == nil {
		s.log = zap.NewNop()
	}
	if s.now == nil {
		s.now = time.Now
	}
	for i := range builtinRoles {
		r := builtinRoles[i]
		s.roles[r.Name] = &r
	}
	s.cost = BcryptCost
	if opts.bcryptCost != 0 {
		s.cost = opts.bcryptCost
	}
	s.minPass = opts.MinPasswordLength
	if s.minPass <= 0 {
		s.minPass = DefaultMinPasswordLength
	}
	window := opts.FailureWindow
	if window <= 0 {
		window = defaultFailureWindow
	}
	s.limiter = newLimiter(opts.MaxFailures, window)
	m, err := newMetrics(opts.Registerer)
	if err != nil {
		return nil, err
	}
	s.metrics = m
	if !opts.Enabled {
		return s, nil
	}
	if s.minPass < recommendedMinPasswordLength {
		s.log.Warn("minimum password length is below the recommended 12 bytes",
			zap.Int("min-password-length", s.minPass))
	}
	if opts.Dir == "" {
		return nil, errors.New("auth: no store directory")
	}
	if err := os.MkdirAll(opts.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("auth: create store dir: %w", err)
	}
	if s.dummyHash, err = newDummyHash(s.cost); err != nil {
		return nil, err
	}
	if err := s.loadUsers(); err != nil {
		return nil, err
	}
	if err := s.loadACLs(); err != nil {
		return nil, err
	}
	if err := s.bootstrapAdmin(); err != nil {
		return nil, err
	}
	return s, nil
}

func newDummyHash(cost int) ([]byte, error) {
	pw := make([]byte, 16)
	if _, err := rand.Read(pw); err != nil {
		return nil, fmt.Errorf("auth: dummy password: %w", err)
	}
	h, err := bcrypt.GenerateFromPassword(pw, cost)
	if err != nil {
		return nil, fmt.Errorf("auth: dummy hash: %w", err)
	}
	return h, nil
}

// readSealed returns the opened blob, or nil if the file does not exist.
func (s *Store) readSealed(name, purpose string) ([]byte, error) {
	blob, err := os.ReadFile(filepath.Join(s.opts.Dir, name))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("auth: read %s: %w", name, err)
	}
	pt, err := crypto.OpenBlob(s.opts.Keyring, purpose, blob)
	if err != nil {
		return nil, fmt.Errorf("auth: open %s: %w", name, err)
	}
	return pt, nil
}

func (s *Store) writeSealed(name, purpose string, v any) error {
	pt, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("auth: encode %s: %w", name, err)
	}
	blob, err := crypto.SealBlob(s.opts.Keyring, purpose, pt)
	if err != nil {
		return fmt.Errorf("auth: seal %s: %w", name, err)
	}
	if err := crypto.WriteFileAtomic(filepath.Join(s.opts.Dir, name), blob, 0o600); err != nil {
		return fmt.Errorf("auth: write %s: %w", name, err)
	}
	return nil
}

func (s *Store) loadUsers() error {
	pt, err := s.readSealed(usersFile, UsersPurpose)
	if err != nil {
		return err
	}
	imported := false
	if pt == nil && s.opts.UserFile != "" {
		if pt, err = os.ReadFile(s.opts.UserFile); err != nil {
			return fmt.Errorf("auth: import user file: %w", err)
		}
		imported = true
	} else if pt != nil && s.opts.UserFile != "" {
		s.log.Info("auth.user_file ignored: the sealed user store already exists",
			zap.String("user-file", s.opts.UserFile))
	}
	if pt == nil {
		return nil
	}
	var f userFile
	if err := json.Unmarshal(pt, &f); err != nil {
		return fmt.Errorf("auth: decode users: %w", err)
	}
	for name, r := range f.Roles {
		if r == nil {
			continue
		}
		if len(name) > MaxRoleNameLen {
			return fmt.Errorf("auth: role %.32q…: %w", name, ErrRoleNameTooLong)
		}
		r.Name = name
		if r.Permissions == nil {
			r.Permissions = []string{}
		}
		s.roles[name] = r
	}
	for name, u := range f.Users {
		if u == nil {
			continue
		}
		if err := checkRoleNames(u.Roles); err != nil {
			return fmt.Errorf("auth: user %q: %w", name, err)
		}
		u.Username = name
		s.users[name] = u
	}
	if imported {
		s.log.Info("imported the old user file into the sealed store",
			zap.String("user-file", s.opts.UserFile), zap.Int("users", len(s.users)),
			zap.Int("custom-roles", len(f.Roles)))
		return s.saveUsersLocked()
	}
	return nil
}

func (s *Store) loadACLs() error {
	pt, err := s.readSealed(aclsFile, ACLsPurpose)
	if err != nil {
		return err
	}
	imported := false
	if pt == nil && s.opts.ACLFile != "" {
		if pt, err = os.ReadFile(s.opts.ACLFile); err != nil {
			return fmt.Errorf("auth: import ACL file: %w", err)
		}
		imported = true
	} else if pt != nil && s.opts.ACLFile != "" {
		s.log.Info("auth.acl_file ignored: the sealed ACL store already exists",
			zap.String("acl-file", s.opts.ACLFile))
	}
	if pt == nil {
		return nil
	}
	var f aclFile
	if err := json.Unmarshal(pt, &f); err != nil {
		return fmt.Errorf("auth: decode ACLs: %w", err)
	}
	for topic, a := range f.ACLs {
		if a == nil {
			continue
		}
		a.Topic = topic
		s.acls[topic] = a
	}
	if imported {
		// Upstream let the file's default_public silently override the
		// config (§13 #13); here the config wins and the conflict is said.
		if f.DefaultPublic != nil && *f.DefaultPublic != s.opts.DefaultPublic {
			s.log.Warn("the imported ACL file's default_public differs from the config; the config wins",
				zap.Bool("file-default-public", *f.DefaultPublic),
				zap.Bool("default-public", s.opts.DefaultPublic))
		}
		s.log.Info("imported the old ACL file into the sealed store",
			zap.String("acl-file", s.opts.ACLFile), zap.Int("acls", len(s.acls)))
		return s.saveACLsLocked()
	}
	return nil
}

// bootstrapAdmin creates the configured admin when the store holds no
// user at all. Doing it only then means a deleted admin is not brought
// back by a stale config password, and a store nobody can log in to can
// still be rescued by configuring one.
func (s *Store) bootstrapAdmin() error {
	if len(s.users) > 0 {
		return nil
	}
	name, pw := s.opts.AdminUsername, s.opts.AdminPassword
	if name == "" || pw == "" {
		s.log.Warn("authentication is enabled but no user exists and no admin password is configured; " +
			"nobody can log in")
		return nil
	}
	if err := s.checkNewPassword(pw); err != nil {
		return fmt.Errorf("auth: bootstrap admin password: %w", err)
	}
	hash, err := s.hashPassword(pw)
	if err != nil {
		return fmt.Errorf("auth: bootstrap admin: %w", err)
	}
	now := s.now().UTC()
	s.users[name] = &user{Username: name, PasswordHash: hash, Roles: []string{"admin"},
		Enabled: true, CreatedAt: now, UpdatedAt: now}
	if err := s.saveUsersLocked(); err != nil {
		delete(s.users, name)
		return err
	}
	s.log.Info("created the first admin user", zap.String("user", name))
	return nil
}

func (s *Store) saveUsersLocked() error {
	f := userFile{Users: s.users, Roles: map[string]*Role{}}
	for name, r := range s.roles {
		if !isBuiltin(name) || !equalRole(r, builtinRole(name)) {
			f.Roles[name] = r
		}
	}
	return s.writeSealed(usersFile, UsersPurpose, f)
}

func (s *Store) saveACLsLocked() error {
	return s.writeSealed(aclsFile, ACLsPurpose, aclFile{ACLs: s.acls})
}

func isBuiltin(name string) bool { return builtinRole(name) != nil }

func builtinRole(name string) *Role {
	for i := range builtinRoles {
		if builtinRoles[i].Name == name {
			return &builtinRoles[i]
		}
	}
	return nil
}

func equalRole(a, b *Role) bool {
	if a.Description != b.Description || len(a.Permissions) != len(b.Permissions) {
		return false
	}
	for i := range a.Permissions {
		if a.Permissions[i] != b.Permissions[i] {
			return false
		}
	}
	return true
}

func checkRoleNames(roles []string) error {
	for _, r := range roles {
		if len(r) > MaxRoleNameLen {
			return ErrRoleNameTooLong
		}
	}
	return nil
}

// Enabled reports whether authentication is on.
func (s *Store) Enabled() bool { return s != nil && s.opts.Enabled }

// AllowAnonymous reports the allow_anonymous setting.
func (s *Store) AllowAnonymous() bool { return s != nil && s.opts.AllowAnonymous }

// DefaultPublic reports the default_public setting.
func (s *Store) DefaultPublic() bool { return s != nil && s.opts.DefaultPublic }

// Roles lists admin, producer, consumer, guest, then custom roles by name
// (§6.5). It works with authentication disabled (§3.6).
func (s *Store) Roles() []Role {
	if s == nil {
		out := make([]Role, len(builtinRoles))
		for i, r := range builtinRoles {
			out[i] = cloneRole(&r)
		}
		return out
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]Role, 0, len(s.roles))
	for _, b := range builtinRoles {
		out = append(out, cloneRole(s.roles[b.Name]))
	}
	var custom []string
	for name := range s.roles {
		if !isBuiltin(name) {
			custom = append(custom, name)
		}
	}
	sort.Strings(custom)
	for _, name := range custom {
		out = append(out, cloneRole(s.roles[name]))
	}
	return out
}

func cloneRole(r *Role) Role {
	return Role{Name: r.Name, Permissions: append([]string{}, r.Permissions...), Description: r.Description}
}
