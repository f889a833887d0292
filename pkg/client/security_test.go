package client

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flymq/flymq/internal/protocol"
)

// secVectorsPath is the repo copy of the spec's security vectors (§16).
const secVectorsPath = "../../testdata/vectors/security-and-advanced.json"

// secVectors maps vector names to frames. For each reply the required
// (".expected") bytes win over the upstream capture.
func secVectors(t *testing.T) map[string][]byte {
	t.Helper()
	data, err := os.ReadFile(secVectorsPath)
	if err != nil {
		t.Fatal(err)
	}
	var vs []vector
	if err := json.Unmarshal(data, &vs); err != nil {
		t.Fatal(err)
	}
	out := map[string][]byte{}
	for _, v := range vs {
		b, err := hex.DecodeString(v.Hex)
		if err != nil {
			t.Fatal(err)
		}
		out[v.Name] = b
	}
	return out
}

// scriptedServer answers every request with the frame set by reply; it
// records the requests like every fakeServer.
type scriptedServer struct {
	*fakeServer
	mu    sync.Mutex
	next  []byte
	drops int // connections to close instead of answering
}

func newScriptedServer(t *testing.T) *scriptedServer {
	s := &scriptedServer{}
	s.fakeServer = newFakeServer(t, func(protocol.Header, []byte) []byte {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.drops > 0 {
			s.drops--
			return nil
		}
		return s.next
	})
	return s
}

func (s *scriptedServer) reply(frame []byte) {
	s.mu.Lock()
	s.next = frame
	s.mu.Unlock()
}

func (s *scriptedServer) requestsSince(n int) []string {
	s.fakeServer.mu.Lock()
	defer s.fakeServer.mu.Unlock()
	return append([]string(nil), s.requests[n:]...)
}

func (s *scriptedServer) requestCount() int {
	s.fakeServer.mu.Lock()
	defer s.fakeServer.mu.Unlock()
	return len(s.requests)
}

// TestSecurityAgainstVectors calls each security method with the
// arguments of a spec vector: the request must be byte-identical to the
// upstream Go client's, and the reply (the required one where the spec
// gives it) must decode to the vector's values.
func TestSecurityAgainstVectors(t *testing.T) {
	vec := secVectors(t)
	s := newScriptedServer(t)
	c := dial(t, s.fakeServer, Options{RequestTimeout: 5 * time.Second})

	// step answers with the named reply, runs fn and checks the request.
	step := func(name, replyKind string, fn func() error) error {
		t.Helper()
		reply, ok := vec[name+"."+replyKind]
		if !ok {
			t.Fatalf("no vector %s.%s", name, replyKind)
		}
		s.reply(reply)
		err := fn()
		if got, want := s.lastRequest(), hex.EncodeToString(vec[name+".request"]); got != want {
			t.Errorf("%s: request\n got %s\nwant %s", name, got, want)
		}
		return err
	}
	wantServerError := func(name string, err error, text string) {
		t.Helper()
		var se *ServerError
		if !errors.As(err, &se) || se.Message != text {
			t.Errorf("%s: error %v, want server error %q", name, err, text)
		}
	}

	var roles []string
	err := step("auth.admin_ok", "expected", func() (err error) {
		roles, err = c.Authenticate("admin", "adminpass")
		return err
	})
	if err != nil || !reflect.DeepEqual(roles, []string{"admin"}) {
		t.Errorf("Authenticate = %v, %v", roles, err)
	}
	err = step("auth.wrong_password", "response", func() error {
		_, err := c.Authenticate("admin", "wrong")
		return err
	})
	if !errors.Is(err, ErrAuthFailed) || err.Error() != "authentication failed: invalid username or password" {
		t.Errorf("Authenticate wrong password: %v", err)
	}

	var id Identity
	err = step("whoami.admin", "expected", func() (err error) { id, err = c.WhoAmI(); return err })
	if err != nil || !id.Authenticated || id.Username != "admin" ||
		!reflect.DeepEqual(id.Permissions, []string{"read", "write", "admin"}) || len(id.Roles) != 0 {
		t.Errorf("WhoAmI = %+v, %v", id, err)
	}
	err = step("whoami.unauthenticated", "expected", func() (err error) { id, err = c.WhoAmI(); return err })
	if err != nil || id.Authenticated || id.Username != "" {
		t.Errorf("WhoAmI anonymous = %+v, %v", id, err)
	}

	if err := step("user_create.producer_alice", "response", func() error {
		return c.CreateUser("alice", "alicepw", []string{"producer"})
	}); err != nil {
		t.Errorf("CreateUser: %v", err)
	}
	wantServerError("user_create.exists", step("user_create.exists", "response", func() error {
		return c.CreateUser("alice", "other", []string{"producer"})
	}), `user "alice" already exists`)
	wantServerError("user_create.unauthenticated", step("user_create.unauthenticated", "response", func() error {
		return c.CreateUser("mallory", "x", []string{"admin"})
	}), "authentication required")

	var u UserInfo
	err = step("user_get.alice", "response", func() (err error) { u, err = c.GetUser("alice"); return err })
	want := UserInfo{Username: "alice", Roles: []string{"producer"}, Permissions: []string{"write"},
		Enabled: true, CreatedAt: 1796301702, UpdatedAt: 1796301702}
	if err != nil || !reflect.DeepEqual(u, want) {
		t.Errorf("GetUser = %+v, %v", u, err)
	}
	wantServerError("user_get.missing", step("user_get.missing", "response", func() error {
		_, err := c.GetUser("nobody")
		return err
	}), `user "nobody" not found`)

	var users []UserInfo
	err = step("user_list.four_users", "response", func() (err error) { users, err = c.ListUsers(); return err })
	if err != nil || len(users) != 4 || users[0].Username != "admin" {
		t.Errorf("ListUsers = %+v, %v", users, err)
	}

	on, off := true, false
	if err := step("user_update.dave", "response", func() error {
		return c.UpdateUser("dave", []string{"consumer"}, &on)
	}); err != nil {
		t.Errorf("UpdateUser: %v", err)
	}
	if err := step("user_update.disable_bob", "response", func() error {
		return c.UpdateUser("bob", []string{"consumer"}, &off)
	}); err != nil {
		t.Errorf("UpdateUser disable: %v", err)
	}
	// Roles only: the enabled byte is left off, so the flag stays.
	if err := step("user_update.missing_enabled_byte", "response", func() error {
		return c.UpdateUser("zed", []string{"admin"}, nil)
	}); err != nil {
		t.Errorf("UpdateUser roles only: %v", err)
	}
	wantServerError("user_update.missing", step("user_update.missing", "response", func() error {
		return c.UpdateUser("ghost", []string{"consumer"}, &on)
	}), `user "ghost" not found`)

	if err := step("user_delete.dave", "response", func() error { return c.DeleteUser("dave") }); err != nil {
		t.Errorf("DeleteUser: %v", err)
	}
	wantServerError("user_delete.self", step("user_delete.self", "response", func() error {
		return c.DeleteUser("admin")
	}), "cannot delete your own account")

	if err := step("password_change.self_ok", "response", func() error {
		return c.ChangePassword("alice", "alicepw", "alicepw2")
	}); err != nil {
		t.Errorf("ChangePassword: %v", err)
	}
	if err := step("password_change.admin_for_other", "response", func() error {
		return c.ChangePassword("alice", "", "alicepw3")
	}); err != nil {
		t.Errorf("ChangePassword admin: %v", err)
	}
	wantServerError("password_change.self_wrong_old", step("password_change.self_wrong_old", "response", func() error {
		return c.ChangePassword("alice", "bad", "newpw")
	}), "invalid current password")

	if err := step("acl_set.shared", "response", func() error {
		return c.SetACL("shared", false, []string{"alice"}, []string{"consumer"})
	}); err != nil {
		t.Errorf("SetACL: %v", err)
	}
	wantServerError("acl_set.public_rejected", step("acl_set.public_rejected", "response", func() error {
		return c.SetACL("news", true, nil, nil)
	}), "cannot make topic public because anonymous access is disabled in server configuration")

	var acl ACLInfo
	err = step("acl_get.shared", "response", func() (err error) { acl, err = c.GetACL("shared"); return err })
	if err != nil || !acl.Exists || acl.Public || !reflect.DeepEqual(acl.AllowedUsers, []string{"alice"}) ||
		!reflect.DeepEqual(acl.AllowedRoles, []string{"consumer"}) {
		t.Errorf("GetACL = %+v, %v", acl, err)
	}
	err = step("acl_get.missing_default_public", "response", func() (err error) { acl, err = c.GetACL("zzz"); return err })
	if err != nil || acl.Exists || !acl.DefaultPublic {
		t.Errorf("GetACL missing = %+v, %v", acl, err)
	}
	var list ACLList
	err = step("acl_list.two", "response", func() (err error) { list, err = c.ListACLs(); return err })
	if err != nil || len(list.Entries) != 2 || list.Entries[1].Topic != "tmp" || list.DefaultPublic {
		t.Errorf("ListACLs = %+v, %v", list, err)
	}
	if err := step("acl_delete.tmp", "response", func() error { return c.DeleteACL("tmp") }); err != nil {
		t.Errorf("DeleteACL: %v", err)
	}
	wantServerError("acl_list.auth_disabled", step("acl_list.auth_disabled", "expected", func() error {
		_, err := c.ListACLs()
		return err
	}), "authentication is not enabled")

	var rl []RoleInfo
	err = step("role_list.admin", "response", func() (err error) { rl, err = c.ListRoles(); return err })
	if err != nil || len(rl) != 4 {
		t.Errorf("ListRoles = %+v, %v", rl, err)
	}
	for _, r := range rl {
		if r.Name == "consumer" && (r.Description != "Read-only access (consume messages)" ||
			!reflect.DeepEqual(r.Permissions, []string{"read"})) {
			t.Errorf("consumer role = %+v", r)
		}
	}

	var res *AuditResult
	err = step("audit_query.admin", "response", func() (err error) {
		res, err = c.AuditQuery(AuditFilter{EventTypes: []string{"auth.failure"}, Limit: 2})
		return err
	})
	if err != nil || len(res.Events) != 2 {
		t.Fatalf("AuditQuery = %+v, %v", res, err)
	}
	ev := res.Events[0]
	if ev.ID != "c0da9c95-e7a1-4c8f-88cf-788ac2a02a1d" || ev.Timestamp != 1796301702953 || ev.Type != "auth.failure" ||
		ev.User != "bob" || ev.ClientIP != "127.0.0.1" || ev.NodeID != "node-test" ||
		!reflect.DeepEqual(ev.Details, []AuditDetail{{Key: "reason", Value: "user account is disabled"}}) {
		t.Errorf("event = %+v", ev)
	}
	wantServerError("audit_query.unauthenticated", step("audit_query.unauthenticated", "response", func() error {
		_, err := c.AuditQuery(AuditFilter{Limit: 10})
		return err
	}), "admin access required for audit queries")

	var doc []byte
	err = step("audit_export.csv", "response", func() (err error) {
		doc, err = c.AuditExport(AuditFilter{EventTypes: []string{"user.create"}}, "csv")
		return err
	})
	if err != nil || !strings.HasPrefix(string(doc), "ID,Timestamp,Type,User,ClientIP,Resource,Action,Result,NodeID,Details\n") ||
		len(doc) != 989 {
		t.Errorf("AuditExport = %d bytes %q, %v", len(doc), doc, err)
	}
}

// TestUpdateUserNoChange: a request naming no change is refused locally,
// since the broker would reject its bytes as malformed.
func TestUpdateUserNoChange(t *testing.T) {
	s := newScriptedServer(t)
	c := dial(t, s.fakeServer, Options{})
	n := s.requestCount()
	if err := c.UpdateUser("bob", nil, nil); !errors.Is(err, ErrNoChange) {
		t.Fatalf("UpdateUser(nil, nil) = %v", err)
	}
	if got := s.requestsSince(n); len(got) != 0 {
		t.Fatalf("sent %v", got)
	}
}

// TestAuditFilterTimes: times travel as whole Unix seconds, zero as open.
func TestAuditFilterTimes(t *testing.T) {
	start := time.Unix(1796301702, 999e6)
	q, err := auditRequest(AuditFilter{Start: start, Limit: 1 << 40, Offset: -5})
	if err != nil {
		t.Fatal(err)
	}
	if q.StartTime != 1796301702 || q.EndTime != 0 || q.Limit != 1<<31-1 || q.Offset != -5 {
		t.Fatalf("request = %+v", q)
	}
}

// TestAuthenticateSwitchesReconnectCredentials: after a successful switch
// a reconnect logs in as the new user; after a refused one it stays
// anonymous, as the broker left the session.
func TestAuthenticateSwitchesReconnectCredentials(t *testing.T) {
	vec := secVectors(t)
	s := newScriptedServer(t)
	s.reply(vec["auth.admin_ok.expected"])
	c := dial(t, s.fakeServer, Options{Username: "admin", Password: "adminpass"})

	s.reply(vec["auth.alice_ok.expected"])
	roles, err := c.Authenticate("alice", "alicepw")
	if err != nil || !reflect.DeepEqual(roles, []string{"producer"}) {
		t.Fatalf("Authenticate alice = %v, %v", roles, err)
	}
	// The broker drops the connection; the next call reconnects.
	s.mu.Lock()
	s.drops = 1
	s.mu.Unlock()
	if _, err := c.WhoAmI(); err == nil {
		t.Fatal("WhoAmI on a dropped connection succeeded")
	}
	n := s.requestCount()
	s.reply(vec["auth.alice_ok.expected"])
	c.WhoAmI() // AUTH alice answered, then WHOAMI gets the same (wrong-op) frame
	got := s.requestsSince(n)
	if len(got) != 2 || got[0] != hex.EncodeToString(vec["auth.alice_ok.request"]) {
		t.Fatalf("reconnect sent %v", got)
	}

	s.reply(vec["auth.wrong_password.response"])
	if _, err := c.Authenticate("admin", "wrong"); !errors.Is(err, ErrAuthFailed) {
		t.Fatalf("Authenticate wrong = %v", err)
	}
	s.mu.Lock()
	s.drops = 1
	s.mu.Unlock()
	c.WhoAmI()
	n = s.requestCount()
	s.reply(vec["whoami.unauthenticated.expected"])
	if id, err := c.WhoAmI(); err != nil || id.Authenticated {
		t.Fatalf("WhoAmI after refused switch = %+v, %v", id, err)
	}
	if got := s.requestsSince(n); len(got) != 1 || got[0] != hex.EncodeToString(vec["whoami.admin.request"]) {
		t.Fatalf("reconnect after refused switch sent %v", got)
	}
}
