package auth

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
	"golang.org/x/crypto/bcrypt"

	"github.com/flymq/flymq/internal/audit"
	"github.com/flymq/flymq/internal/crypto"
)

const adminPass = "adminpass-long"

type sink struct {
	mu  sync.Mutex
	evs []audit.Event
}

func (s *sink) Record(ev audit.Event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.evs = append(s.evs, ev)
}

func (s *sink) last() audit.Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.evs[len(s.evs)-1]
}

type env struct {
	s    *Store
	dir  string
	sink *sink
	logs *observer.ObservedLogs
	now  *time.Time
}

func newEnv(t *testing.T, mod func(*Options)) *env {
	t.Helper()
	core, logs := observer.New(zap.DebugLevel)
	now := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	e := &env{dir: t.TempDir(), sink: &sink{}, logs: logs, now: &now}
	opts := Options{
		Enabled: true, AdminUsername: "admin", AdminPassword: adminPass,
		Dir: filepath.Join(e.dir, "auth"), Logger: zap.New(core), Audit: e.sink, NodeID: "node-test",
		MaxFailures: 5, FailureWindow: time.Minute, Now: func() time.Time { return *e.now },
		bcryptCost: bcrypt.MinCost,
	}
	if mod != nil {
		mod(&opts)
	}
	s, err := Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	e.s = s
	return e
}

func (e *env) reopen(t *testing.T, mod func(*Options)) *Store {
	t.Helper()
	opts := e.s.opts
	if mod != nil {
		mod(&opts)
	}
	s, err := Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

var admin = Identity{User: "admin", ClientIP: "127.0.0.1"}

func mustCreate(t *testing.T, s *Store, name, pw string, roles ...string) {
	t.Helper()
	if err := s.CreateUser(admin, name, pw, roles); err != nil {
		t.Fatalf("create %s: %v", name, err)
	}
}

func wantErr(t *testing.T, err error, text string) {
	t.Helper()
	got := "<nil>"
	if err != nil {
		got = err.Error()
	}
	if got != text {
		t.Fatalf("error %q, want %q", got, text)
	}
}

// population creates the users of the gate tests: alice producer, bob
// consumer, gus guest, zed a disabled admin, ghost deleted; ACL "shared"
// lists alice and the consumer role.
func population(t *testing.T, s *Store) {
	t.Helper()
	mustCreate(t, s, "alice", "alicepw-1", "producer")
	mustCreate(t, s, "bob", "bobpw-123", "consumer")
	mustCreate(t, s, "gus", "guspw-123", "guest")
	mustCreate(t, s, "zed", "zedpw-123", "admin")
	mustCreate(t, s, "ghost", "ghostpw-1", "admin")
	disabled := false
	if err := s.UpdateUser(admin, "zed", nil, &disabled); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteUser(admin, "ghost"); err != nil {
		t.Fatal(err)
	}
	if err := s.SetACL(admin, "shared", false, []string{"gus"}, []string{"consumer"}); err != nil {
		t.Fatal(err)
	}
}

const (
	authReq  = "authentication required"
	unauth   = "unauthorized"
	disabled = "user account is disabled"
	ok       = "<nil>"
)

type gateCase struct {
	user  string // "" anonymous
	gate  Gate
	topic string
	want  string
}

func runGates(t *testing.T, s *Store, cases []gateCase) {
	t.Helper()
	for _, c := range cases {
		err := s.Check(Identity{User: c.user}, c.gate, c.topic)
		got := ok
		if err != nil {
			got = err.Error()
		}
		if got != c.want {
			t.Errorf("Check(%q, %v, %q) = %q, want %q", c.user, c.gate, c.topic, got, c.want)
		}
	}
}

// Defaults of this broker: default_public=false, allow_anonymous=false.
func TestGatesPrivateDefaults(t *testing.T) {
	e := newEnv(t, nil)
	population(t, e.s)
	var cases []gateCase
	// Rows every gate shares: anonymous, deleted and disabled sessions.
	for _, g := range []Gate{GateSession, GateRead, GateWrite, GateWriteOrAdminSession, GateTopicAdmin, GateUserAdmin} {
		cases = append(cases,
			gateCase{"", g, "orders", authReq},
			gateCase{"ghost", g, "orders", unauth},
			gateCase{"zed", g, "orders", disabled},
			gateCase{"admin", g, "orders", ok},
		)
	}
	cases = append(cases,
		gateCase{"", GateNone, "orders", ok},
		gateCase{"ghost", GateNone, "orders", ok},
		gateCase{"gus", GateSession, "", ok},
		gateCase{"bob", GateSession, "", ok},
		// Role permissions are global (§3.3).
		gateCase{"alice", GateWrite, "orders", ok},
		gateCase{"alice", GateRead, "orders", unauth},
		gateCase{"bob", GateRead, "orders", ok},
		gateCase{"bob", GateWrite, "orders", unauth},
		gateCase{"gus", GateRead, "orders", unauth},
		gateCase{"gus", GateWrite, "orders", unauth},
		// The ACL allow-list grants read and write, by user or by role.
		gateCase{"gus", GateRead, "shared", ok},
		gateCase{"gus", GateWrite, "shared", ok},
		gateCase{"bob", GateWrite, "shared", ok},
		gateCase{"alice", GateRead, "shared", unauth},
		gateCase{"", GateRead, "shared", authReq},
		gateCase{"ghost", GateRead, "shared", unauth},
		gateCase{"zed", GateRead, "shared", disabled},
		// REGISTER_SCHEMA: write or admin permission.
		gateCase{"alice", GateWriteOrAdminSession, "", ok},
		gateCase{"bob", GateWriteOrAdminSession, "", unauth},
		gateCase{"gus", GateWriteOrAdminSession, "", unauth},
		// Admin gates.
		gateCase{"alice", GateTopicAdmin, "orders", unauth},
		gateCase{"bob", GateUserAdmin, "", unauth},
		gateCase{"gus", GateUserAdmin, "", unauth},
	)
	runGates(t, e.s, cases)
}

// The old server's defaults: every topic without an ACL is public.
func TestGatesPublicTopics(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.DefaultPublic = true; o.AllowAnonymous = true })
	population(t, e.s)
	if err := e.s.SetACL(admin, "open", true, nil, nil); err != nil {
		t.Fatal(err)
	}
	runGates(t, e.s, []gateCase{
		{"", GateRead, "orders", ok},
		{"", GateWrite, "orders", ok}, // allow_anonymous also writes (§3.3)
		{"", GateSession, "", ok},
		{"", GateRead, "shared", authReq}, // entry exists, not public
		{"", GateWrite, "open", ok},
		{"", GateWriteOrAdminSession, "", authReq},
		{"", GateTopicAdmin, "orders", authReq},
		{"", GateUserAdmin, "", authReq},
		{"gus", GateRead, "orders", ok},
		{"gus", GateWrite, "orders", ok},
		{"alice", GateRead, "orders", ok},
		{"alice", GateRead, "shared", unauth},
		// Required deviation: deleted and disabled sessions lose public topics.
		{"ghost", GateRead, "orders", unauth},
		{"zed", GateWrite, "orders", disabled},
		{"ghost", GateSession, "", unauth},
	})
	// Public but anonymous not allowed.
	e2 := newEnv(t, func(o *Options) { o.DefaultPublic = true })
	runGates(t, e2.s, []gateCase{
		{"", GateRead, "orders", authReq},
		{"", GateSession, "", authReq},
		{"admin", GateRead, "orders", ok},
	})
}

func TestAuthDisabled(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.Enabled = false })
	for _, s := range []*Store{nil, e.s} {
		for g := GateNone; g <= GateUserAdmin; g++ {
			if err := s.Check(Identity{}, g, "orders"); err != nil {
				t.Fatalf("gate %v: %v", g, err)
			}
		}
		roles, err := s.Authenticate("127.0.0.1", "admin", "x")
		if roles != nil || err != nil {
			t.Fatalf("Authenticate = %v, %v", roles, err)
		}
		if a, _, _ := s.WhoAmI(Identity{User: "admin"}); a {
			t.Fatal("authenticated with auth disabled")
		}
		if got := len(s.Roles()); got != 4 {
			t.Fatalf("%d roles", got)
		}
	}
	s := e.s
	wantErr(t, s.CreateUser(admin, "a", "b", nil), "authentication is not enabled")
	wantErr(t, s.DeleteUser(admin, "a"), "authentication is not enabled")
	wantErr(t, s.UpdateUser(admin, "a", nil, nil), "authentication is not enabled")
	wantErr(t, s.ChangePassword(admin, "a", "", "b"), "authentication is not enabled")
	wantErr(t, s.SetACL(admin, "t", false, nil, nil), "authentication is not enabled")
	wantErr(t, s.DeleteACL(admin, "t"), "authentication is not enabled")
	_, err := s.Users()
	wantErr(t, err, "authentication is not enabled")
	if _, err := os.Stat(e.s.opts.Dir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("auth disabled touched the disk: %v", err)
	}
	if len(e.sink.evs) != 0 {
		t.Fatalf("audit events with auth disabled: %v", e.sink.evs)
	}
}

func TestAuthenticate(t *testing.T) {
	e := newEnv(t, nil)
	population(t, e.s)
	roles, err := e.s.Authenticate("10.0.0.1", "admin", adminPass)
	if err != nil || !reflect.DeepEqual(roles, []string{"admin"}) {
		t.Fatalf("admin: %v %v", roles, err)
	}
	ev := e.sink.last()
	if ev.Type != "auth.success" || ev.User != "admin" || ev.ClientIP != "10.0.0.1" ||
		ev.Details["roles"] != "[admin]" || ev.Action != "authenticate" || ev.NodeID != "node-test" {
		t.Fatalf("audit %+v", ev)
	}
	for _, c := range []struct{ user, pw, want string }{
		{"admin", "wrong", "invalid username or password"},
		{"nobody", "x", "invalid username or password"},
		{"ghost", "ghostpw-1", "invalid username or password"},
		{"zed", "zedpw-123", "user account is disabled"},
		// The disabled flag is only revealed to whoever knows the password.
		{"zed", "wrong", "invalid username or password"},
		{"admin", strings.Repeat("p", 73), "invalid username or password"},
	} {
		_, err := e.s.Authenticate("10.0.0.2", c.user, c.pw)
		wantErr(t, err, c.want)
		ev := e.sink.last()
		if ev.Type != "auth.failure" || ev.User != c.user || ev.Result != "failure" || ev.Details["reason"] != c.want {
			t.Fatalf("audit %+v", ev)
		}
		// Fresh limiter: this test is about the texts, not the limit.
		e.s.limiter = newLimiter(5, time.Minute)
	}
}

// An upstream user file's $2a$ hashes keep working.
func TestOld2aHash(t *testing.T) {
	h, err := bcrypt.GenerateFromPassword([]byte("oldpass-123"), bcrypt.MinCost)
	if err != nil || !bytes.HasPrefix(h, []byte("$2a$04$")) {
		t.Fatalf("%s %v", h, err)
	}
	e := newEnv(t, nil)
	e.s.users["legacy"] = &user{Username: "legacy", PasswordHash: string(h), Roles: []string{"consumer"}, Enabled: true}
	roles, err := e.s.Authenticate("1.2.3.4", "legacy", "oldpass-123")
	if err != nil || !reflect.DeepEqual(roles, []string{"consumer"}) {
		t.Fatalf("%v %v", roles, err)
	}
}

func TestRateLimit(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.MaxFailures = 3 })
	calls := 0
	e.s.compareHash = func(h, p []byte) error { calls++; return bcrypt.CompareHashAndPassword(h, p) }
	for i := range 3 {
		_, err := e.s.Authenticate("10.0.0.9", "admin", "wrong")
		wantErr(t, err, "invalid username or password")
		if calls != i+1 {
			t.Fatalf("attempt %d: %d bcrypt calls", i+1, calls)
		}
	}
	// The 4th attempt is refused before bcrypt, even with the right password.
	_, err := e.s.Authenticate("10.0.0.9", "admin", adminPass)
	wantErr(t, err, "too many failed attempts, try again later")
	if calls != 3 {
		t.Fatalf("refused attempt ran bcrypt: %d calls", calls)
	}
	if ev := e.sink.last(); ev.Details["reason"] != "too many failed attempts, try again later" {
		t.Fatalf("audit %+v", ev)
	}
	// Another peer is not affected; unknown users cost a bcrypt too.
	_, err = e.s.Authenticate("10.0.0.10", "nobody", "x")
	wantErr(t, err, "invalid username or password")
	if calls != 4 {
		t.Fatalf("unknown user skipped bcrypt: %d calls", calls)
	}
	if _, err := e.s.Authenticate("10.0.0.10", "admin", adminPass); err != nil {
		t.Fatal(err)
	}
	// Still refused just before the window ends, allowed after it.
	*e.now = e.now.Add(time.Minute - time.Second)
	_, err = e.s.Authenticate("10.0.0.9", "admin", adminPass)
	wantErr(t, err, "too many failed attempts, try again later")
	*e.now = e.now.Add(time.Second)
	if _, err := e.s.Authenticate("10.0.0.9", "admin", adminPass); err != nil {
		t.Fatal(err)
	}
}

func TestRateLimitOff(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.MaxFailures = 0 })
	e.s.compareHash = func(h, p []byte) error { return bcrypt.ErrMismatchedHashAndPassword }
	for range 20 {
		_, err := e.s.Authenticate("10.0.0.9", "admin", "wrong")
		wantErr(t, err, "invalid username or password")
	}
}

func TestCreateUser(t *testing.T) {
	e := newEnv(t, nil)
	s := e.s
	mustCreate(t, s, "alice", "alicepw-1", "producer", "superuser", "producer")
	ev := e.sink.last()
	if ev.Type != "user.create" || ev.User != "admin" || ev.Resource != "alice" || ev.Action != "user_create" ||
		ev.Details["roles"] != "[producer superuser producer]" || ev.ClientIP != "127.0.0.1" {
		t.Fatalf("audit %+v", ev)
	}
	u, err := s.GetUser("alice")
	if err != nil {
		t.Fatal(err)
	}
	want := UserInfo{Username: "alice", Roles: []string{"producer", "superuser", "producer"},
		Permissions: []string{"write"}, Enabled: true, CreatedAt: *e.now, UpdatedAt: *e.now}
	if !reflect.DeepEqual(u, want) {
		t.Fatalf("got %+v", u)
	}
	wantErr(t, s.CreateUser(admin, "alice", "otherpw-1", nil), `user "alice" already exists`)
	if ev := e.sink.last(); ev.Result != "failure" || ev.Details["error"] != `user "alice" already exists` {
		t.Fatalf("audit %+v", ev)
	}
	wantErr(t, s.CreateUser(admin, "carol", "", nil), "username and password are required")
	wantErr(t, s.CreateUser(admin, "", "carolpw-1", nil), "username and password are required")
	wantErr(t, s.CreateUser(admin, "carol", strings.Repeat("x", 73), nil),
		"failed to hash password: bcrypt: password length exceeds 72 bytes")
	wantErr(t, s.CreateUser(admin, "carol", "short", nil), "password too short: at least 8 bytes required")
	wantErr(t, s.CreateUser(admin, "carol", "carolpw-1", []string{strings.Repeat("r", 256)}),
		"role name exceeds 255 bytes")
	mustCreate(t, s, "carol", strings.Repeat("x", 72), strings.Repeat("r", 255))
	_, err = s.GetUser("nobody")
	wantErr(t, err, `user "nobody" not found`)
	if !errors.Is(err, ErrUserNotFound) {
		t.Fatal("not ErrUserNotFound")
	}
}

func TestDeleteAndUpdateUser(t *testing.T) {
	e := newEnv(t, nil)
	s := e.s
	mustCreate(t, s, "dave", "davepw-12", "superuser")
	wantErr(t, s.DeleteUser(admin, "admin"), "cannot delete your own account")
	wantErr(t, s.DeleteUser(admin, "ghost"), `user "ghost" not found`)
	wantErr(t, s.UpdateUser(admin, "ghost", []string{"consumer"}, nil), `user "ghost" not found`)

	*e.now = e.now.Add(time.Hour)
	// Role count 0 leaves roles alone; a missing enabled byte leaves the flag.
	if err := s.UpdateUser(admin, "dave", nil, nil); err != nil {
		t.Fatal(err)
	}
	u, _ := s.GetUser("dave")
	if !reflect.DeepEqual(u.Roles, []string{"superuser"}) || !u.Enabled || !u.UpdatedAt.Equal(*e.now) {
		t.Fatalf("got %+v", u)
	}
	off := false
	if err := s.UpdateUser(admin, "dave", []string{"consumer", "producer"}, &off); err != nil {
		t.Fatal(err)
	}
	u, _ = s.GetUser("dave")
	if !reflect.DeepEqual(u.Roles, []string{"consumer", "producer"}) || u.Enabled ||
		!reflect.DeepEqual(u.Permissions, []string{"read", "write"}) {
		t.Fatalf("got %+v", u)
	}
	if ev := e.sink.last(); ev.Type != "user.update" || ev.Details["enabled"] != "false" ||
		ev.Details["roles"] != "[consumer producer]" {
		t.Fatalf("audit %+v", ev)
	}
	if err := s.DeleteUser(admin, "dave"); err != nil {
		t.Fatal(err)
	}
	if ev := e.sink.last(); ev.Type != "user.delete" || ev.Resource != "dave" || ev.Result != "success" {
		t.Fatalf("audit %+v", ev)
	}
	users, _ := s.Users()
	if len(users) != 1 || users[0].Username != "admin" {
		t.Fatalf("users %+v", users)
	}
}

func TestChangePassword(t *testing.T) {
	e := newEnv(t, nil)
	s := e.s
	mustCreate(t, s, "alice", "alicepw-1", "producer")
	mustCreate(t, s, "bob", "bobpw-123", "consumer")
	alice := Identity{User: "alice"}
	wantErr(t, s.ChangePassword(alice, "alice", "bad", "alicepw-2"), "invalid current password")
	wantErr(t, s.ChangePassword(alice, "alice", "alicepw-1", ""), "username and password are required")
	wantErr(t, s.ChangePassword(alice, "alice", "alicepw-1", strings.Repeat("x", 73)),
		"failed to hash password: bcrypt: password length exceeds 72 bytes")
	if err := s.ChangePassword(alice, "alice", "alicepw-1", "alicepw-2"); err != nil {
		t.Fatal(err)
	}
	if ev := e.sink.last(); ev.Type != "user.password" || ev.User != "alice" || ev.Resource != "alice" {
		t.Fatalf("audit %+v", ev)
	}
	if _, err := s.Authenticate("1.1.1.1", "alice", "alicepw-2"); err != nil {
		t.Fatal(err)
	}
	// Someone else's account: user management, no old password.
	wantErr(t, s.ChangePassword(Identity{}, "alice", "x", "alicepw-3"), "authentication required")
	wantErr(t, s.ChangePassword(Identity{User: "bob"}, "alice", "", "alicepw-3"), "unauthorized")
	wantErr(t, s.ChangePassword(admin, "ghost", "", "ghostpw-1"), `user "ghost" not found`)
	if err := s.ChangePassword(admin, "alice", "", "alicepw-3"); err != nil {
		t.Fatal(err)
	}
	// An admin changing their own password must give it.
	wantErr(t, s.ChangePassword(admin, "admin", "", "adminpass-2"), "invalid current password")
	// Anonymous naming "" goes the own-account way and fails there.
	wantErr(t, s.ChangePassword(Identity{}, "", "", "whatever-1"), "invalid current password")
	off := false
	if err := s.UpdateUser(admin, "bob", nil, &off); err != nil {
		t.Fatal(err)
	}
	wantErr(t, s.ChangePassword(Identity{User: "bob"}, "bob", "bobpw-123", "bobpw-456"), "invalid current password")
	// A disabled admin cannot manage others.
	mustCreate(t, s, "zed", "zedpw-123", "admin")
	if err := s.UpdateUser(admin, "zed", nil, &off); err != nil {
		t.Fatal(err)
	}
	wantErr(t, s.ChangePassword(Identity{User: "zed"}, "alice", "", "alicepw-4"), "user account is disabled")
}

func TestACLs(t *testing.T) {
	e := newEnv(t, nil)
	s := e.s
	wantErr(t, s.SetACL(admin, "news", true, nil, nil),
		"cannot make topic public because anonymous access is disabled in server configuration")
	if err := s.SetACL(admin, "tmp", false, nil, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.SetACL(admin, "shared", false, []string{"alice"}, []string{"consumer"}); err != nil {
		t.Fatal(err)
	}
	if ev := e.sink.last(); ev.Type != "acl.set" || ev.Resource != "shared" || ev.Details["allowed_users"] != "[alice]" {
		t.Fatalf("audit %+v", ev)
	}
	list, _ := s.ACLs()
	want := []ACL{
		{Topic: "shared", AllowedUsers: []string{"alice"}, AllowedRoles: []string{"consumer"}},
		{Topic: "tmp", AllowedUsers: []string{}, AllowedRoles: []string{}},
	}
	if !reflect.DeepEqual(list, want) {
		t.Fatalf("got %+v", list)
	}
	a, exists, _ := s.GetACL("orders")
	if exists || a.Topic != "orders" || a.Public {
		t.Fatalf("missing entry: %+v %v", a, exists)
	}
	if err := s.DeleteACL(admin, "tmp"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteACL(admin, "never-set"); err != nil {
		t.Fatal(err)
	}
	if _, exists, _ := s.GetACL("tmp"); exists {
		t.Fatal("tmp still exists")
	}
}

func TestWhoAmI(t *testing.T) {
	e := newEnv(t, nil)
	mustCreate(t, e.s, "multi", "multipw-1", "producer", "nosuchrole", "admin")
	for _, c := range []struct {
		id    Identity
		auth  bool
		user  string
		perms []string
	}{
		{Identity{}, false, "", []string{}},
		{admin, true, "admin", []string{"read", "write", "admin"}},
		{Identity{User: "multi"}, true, "multi", []string{"write", "read", "admin"}},
		{Identity{User: "ghost"}, false, "", []string{}},
	} {
		a, u, p := e.s.WhoAmI(c.id)
		if a != c.auth || u != c.user || !reflect.DeepEqual(p, c.perms) {
			t.Fatalf("WhoAmI(%+v) = %v %q %v", c.id, a, u, p)
		}
	}
}

func TestPersistenceAcrossRestart(t *testing.T) {
	e := newEnv(t, nil)
	mustCreate(t, e.s, "alice", "alicepw-1", "producer")
	if err := e.s.SetACL(admin, "shared", false, []string{"alice"}, nil); err != nil {
		t.Fatal(err)
	}
	// A new admin password in the config does not touch the existing store.
	s2 := e.reopen(t, func(o *Options) { o.AdminPassword = "another-pass" })
	if _, err := s2.Authenticate("1.1.1.1", "alice", "alicepw-1"); err != nil {
		t.Fatal(err)
	}
	if _, err := s2.Authenticate("1.1.1.1", "admin", adminPass); err != nil {
		t.Fatal(err)
	}
	if a, ok, _ := s2.GetACL("shared"); !ok || !reflect.DeepEqual(a.AllowedUsers, []string{"alice"}) {
		t.Fatalf("ACL after restart: %+v %v", a, ok)
	}
	if err := s2.Check(Identity{User: "alice"}, GateRead, "shared"); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{usersFile, aclsFile} {
		st, err := os.Stat(filepath.Join(e.s.opts.Dir, name))
		if err != nil || st.Mode().Perm() != 0o600 {
			t.Fatalf("%s: %v %v", name, st.Mode(), err)
		}
	}
}

func newKeyring(t *testing.T) *crypto.Keyring {
	t.Helper()
	h, err := crypto.GenerateKeyHex()
	if err != nil {
		t.Fatal(err)
	}
	k, err := crypto.ParseKey(h)
	if err != nil {
		t.Fatal(err)
	}
	return crypto.NewKeyring(k)
}

func TestSealedFilesHoldNoPlaintext(t *testing.T) {
	kr := newKeyring(t)
	e := newEnv(t, func(o *Options) { o.Keyring = kr })
	mustCreate(t, e.s, "alice-secret-name", "alicepw-1", "producer")
	if err := e.s.SetACL(admin, "payroll-topic", false, []string{"alice-secret-name"}, []string{"auditors"}); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{usersFile, aclsFile} {
		b, err := os.ReadFile(filepath.Join(e.s.opts.Dir, name))
		if err != nil {
			t.Fatal(err)
		}
		for _, needle := range []string{"alice-secret-name", "admin", "payroll-topic", "auditors", "$2a$", "producer",
			"password_hash", "alicepw-1", adminPass} {
			if bytes.Contains(b, []byte(needle)) {
				t.Errorf("%s contains %q in clear", name, needle)
			}
		}
	}
	s2 := e.reopen(t, nil)
	if _, err := s2.Authenticate("1.1.1.1", "alice-secret-name", "alicepw-1"); err != nil {
		t.Fatal(err)
	}
	// Another key cannot open the store.
	if _, err := Open(func() Options { o := e.s.opts; o.Keyring = newKeyring(t); return o }()); !errors.Is(err, crypto.ErrUnknownKey) {
		t.Fatalf("open with another key: %v", err)
	}
	// Without encryption the same data is readable, as documented.
	plain := newEnv(t, nil)
	b, _ := os.ReadFile(filepath.Join(plain.s.opts.Dir, usersFile))
	if !bytes.Contains(b, []byte(`"admin"`)) {
		t.Fatal("unsealed store unexpectedly unreadable")
	}
}

func TestBootstrapAdmin(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.AdminPassword = "" })
	if users, _ := e.s.Users(); len(users) != 0 {
		t.Fatalf("users without admin password: %+v", users)
	}
	if e.logs.FilterMessageSnippet("nobody can log in").Len() != 1 {
		t.Fatal("no warning about an empty store")
	}
	// Configuring a password later rescues a store nobody can log in to.
	s2 := e.reopen(t, func(o *Options) { o.AdminPassword = adminPass })
	if _, err := s2.Authenticate("1.1.1.1", "admin", adminPass); err != nil {
		t.Fatal(err)
	}
	// A bootstrap password under the minimum is refused at start.
	_, err := Open(Options{Enabled: true, Dir: t.TempDir(), AdminUsername: "admin", AdminPassword: "short",
		bcryptCost: bcrypt.MinCost})
	wantErr(t, err, "auth: bootstrap admin password: password too short: at least 8 bytes required")
}

func TestMinPasswordLengthWarning(t *testing.T) {
	e := newEnv(t, nil) // default 8 < 12
	if e.logs.FilterMessageSnippet("below the recommended 12").Len() != 1 {
		t.Fatal("no warning for a minimum below 12")
	}
	e2 := newEnv(t, func(o *Options) { o.MinPasswordLength = 12; o.AdminPassword = "twelve-chars" })
	if e2.logs.FilterMessageSnippet("below the recommended 12").Len() != 0 {
		t.Fatal("warning with a minimum of 12")
	}
	wantErr(t, e2.s.CreateUser(admin, "x", "elevenchars", nil), "password too short: at least 12 bytes required")
}

func TestImportOldFiles(t *testing.T) {
	dir := t.TempDir()
	hash, _ := bcrypt.GenerateFromPassword([]byte("legacypw-1"), bcrypt.MinCost)
	users := map[string]any{
		"users": map[string]any{
			"legacy": map[string]any{"username": "legacy", "password_hash": string(hash),
				"roles": []string{"auditor"}, "enabled": true,
				"created_at": "2026-01-02T03:04:05Z", "updated_at": "2026-01-02T03:04:05Z"},
		},
		"roles": map[string]any{
			"auditor": map[string]any{"name": "auditor", "permissions": []string{"read"}, "description": "Reads all"},
			"zeta":    map[string]any{"name": "zeta", "permissions": []string{}, "description": "Z"},
		},
	}
	acls := map[string]any{
		"acls":           map[string]any{"ledger": map[string]any{"topic": "ledger", "public": false, "allowed_roles": []string{"auditor"}}},
		"default_public": true,
	}
	write := func(name string, v any) string {
		b, _ := json.Marshal(v)
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	uf, af := write("users.json", users), write("acls.json", acls)
	e := newEnv(t, func(o *Options) { o.UserFile, o.ACLFile = uf, af })
	if e.logs.FilterMessageSnippet("imported the old user file").Len() != 1 ||
		e.logs.FilterMessageSnippet("imported the old ACL file").Len() != 1 ||
		e.logs.FilterMessageSnippet("the config wins").Len() != 1 {
		t.Fatalf("import not logged: %v", e.logs.All())
	}
	// The imported store is not empty, so no bootstrap admin is made.
	if _, err := e.s.GetUser("admin"); !errors.Is(err, ErrUserNotFound) {
		t.Fatalf("admin created over an imported store: %v", err)
	}
	if _, err := e.s.Authenticate("1.1.1.1", "legacy", "legacypw-1"); err != nil {
		t.Fatal(err)
	}
	runGates(t, e.s, []gateCase{
		{"legacy", GateRead, "ledger", ok},
		{"legacy", GateWrite, "ledger", ok},    // ACL grants both
		{"legacy", GateWrite, "other", unauth}, // config default_public=false wins
	})
	var names []string
	for _, r := range e.s.Roles() {
		names = append(names, r.Name)
	}
	if got := strings.Join(names, ","); got != "admin,producer,consumer,guest,auditor,zeta" {
		t.Fatalf("roles %s", got)
	}
	// Second start: the old files are not imported again.
	users["users"].(map[string]any)["late"] = map[string]any{"username": "late", "password_hash": string(hash), "enabled": true}
	write("users.json", users)
	s2 := e.reopen(t, nil)
	if _, err := s2.GetUser("late"); !errors.Is(err, ErrUserNotFound) {
		t.Fatalf("re-imported: %v", err)
	}
	if u, err := s2.GetUser("legacy"); err != nil || !reflect.DeepEqual(u.Permissions, []string{"read"}) {
		t.Fatalf("custom role lost on restart: %+v %v", u, err)
	}
}

func TestRoleList(t *testing.T) {
	e := newEnv(t, nil)
	want := []Role{
		{Name: "admin", Permissions: []string{"read", "write", "admin"}, Description: "Full access to all operations"},
		{Name: "producer", Permissions: []string{"write"}, Description: "Write-only access (produce messages)"},
		{Name: "consumer", Permissions: []string{"read"}, Description: "Read-only access (consume messages)"},
		{Name: "guest", Permissions: []string{}, Description: "Access to public topics only"},
	}
	if got := e.s.Roles(); !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v", got)
	}
	var nilStore *Store
	if got := nilStore.Roles(); !reflect.DeepEqual(got, want) {
		t.Fatalf("nil store: %+v", got)
	}
}

// Nothing secret reaches the log, whatever happened above.
func TestNoSecretsLogged(t *testing.T) {
	e := newEnv(t, nil)
	mustCreate(t, e.s, "alice", "alicepw-secret", "producer")
	_, _ = e.s.Authenticate("1.1.1.1", "alice", "wrongpw-secret")
	_ = e.s.ChangePassword(admin, "alice", "", "newpw-secret")
	for _, entry := range e.logs.All() {
		line := entry.Message
		for k, v := range entry.ContextMap() {
			line += " " + k + "=" + strings.TrimSpace(strings.ReplaceAll(fmtAny(v), "\n", " "))
		}
		for _, secret := range []string{"secret", adminPass, "$2a$"} {
			if strings.Contains(line, secret) {
				t.Fatalf("log line leaks %q: %s", secret, line)
			}
		}
	}
	for _, ev := range e.sink.evs {
		b, _ := json.Marshal(ev)
		if bytes.Contains(b, []byte("secret")) || bytes.Contains(b, []byte("$2a$")) {
			t.Fatalf("audit event leaks a password: %s", b)
		}
	}
}

func fmtAny(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func BenchmarkCheckWrite(b *testing.B) {
	s, err := Open(Options{Enabled: true, Dir: b.TempDir(), AdminUsername: "admin", AdminPassword: adminPass})
	if err != nil {
		b.Fatal(err)
	}
	id := Identity{User: "admin"}
	for b.Loop() {
		if err := s.Check(id, GateWrite, "orders"); err != nil {
			b.Fatal(err)
		}
	}
}

// Without the test override, hashes use cost 10 like upstream ($2a$10$),
// and so does the dummy hash unknown users are compared against.
func TestProductionBcryptCost(t *testing.T) {
	s, err := Open(Options{Enabled: true, Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if cost, err := bcrypt.Cost(s.dummyHash); err != nil || cost != 10 || s.cost != 10 ||
		!bytes.HasPrefix(s.dummyHash, []byte("$2a$10$")) {
		t.Fatalf("dummy hash %.7s cost %d, store cost %d, %v", s.dummyHash, cost, s.cost, err)
	}
}
