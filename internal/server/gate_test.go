package server

import (
	"encoding/binary"
	"io"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/flymq/flymq/internal/audit"
	"github.com/flymq/flymq/internal/auth"
	"github.com/flymq/flymq/internal/protocol"
)

const adminPass = "admin-secret-pw"

// authHarness starts a server with authentication on, default_public off
// and anonymous access off, as the guide's least-privilege setup.
func authHarness(t *testing.T, tweak func(*auth.Options)) (*harness, *auth.Store) {
	t.Helper()
	var store *auth.Store
	h := startServer(t, harnessOptions{encrypted: true, tweak: func(o *Options) {
		ao := auth.Options{
			Enabled:       true,
			AdminUsername: "admin",
			AdminPassword: adminPass,
			Dir:           filepath.Join(t.TempDir(), "auth"),
			MaxFailures:   5,
			FailureWindow: time.Minute,
		}
		al, err := audit.Open(audit.Options{Dir: filepath.Join(t.TempDir(), "audit"), NodeID: "node-1"})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { al.Close() })
		ao.Audit, o.Audit = al, al
		if tweak != nil {
			tweak(&ao)
		}
		if store, err = auth.Open(ao); err != nil {
			t.Fatal(err)
		}
		o.Auth = store
	}})
	return h, store
}

// call sends one request and returns the reply's opcode and payload.
func call(t testing.TB, c net.Conn, op protocol.Op, payload []byte) (protocol.Op, []byte) {
	t.Helper()
	if _, err := c.Write(protocol.AppendFrame(nil, op, protocol.FlagBinary, payload)); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	h := make([]byte, protocol.HeaderSize)
	if _, err := io.ReadFull(c, h); err != nil {
		t.Fatalf("op %v: %v", op, err)
	}
	p := make([]byte, binary.BigEndian.Uint32(h[4:]))
	if _, err := io.ReadFull(c, p); err != nil {
		t.Fatal(err)
	}
	return protocol.Op(h[2]), p
}

func login(t *testing.T, h *harness, user, pass string) net.Conn {
	t.Helper()
	c := h.dial(t)
	t.Cleanup(func() { c.Close() })
	if user == "" {
		return c
	}
	req := protocol.AuthRequest{Username: user, Password: pass}
	op, p := call(t, c, protocol.OpAuth, req.AppendTo(nil))
	var resp protocol.AuthResponse
	if op != protocol.OpAuthResponse || resp.Decode(p) != nil || !resp.Success {
		t.Fatalf("AUTH %s: op %v %+v", user, op, resp)
	}
	return c
}

type payloader interface{ AppendTo([]byte) []byte }

func enc(m payloader) []byte { return m.AppendTo(nil) }

// TestGateTable checks every row of the gate table both ways: the
// identities the spec allows get a reply, every other one the exact text.
func TestGateTable(t *testing.T) {
	h, store := authHarness(t, nil)
	conns := gateIdentities(t, h, store)
	// Fixtures the reads need.
	a := conns["admin"]
	if op, p := call(t, a, protocol.OpCreateTopic, enc(&protocol.CreateTopicRequest{Topic: "t", Partitions: 1})); op != protocol.OpCreateTopic {
		t.Fatalf("create: %s", protocol.DecodeError(p))
	}
	call(t, a, protocol.OpProduce, enc(&protocol.ProduceRequest{Topic: "t", Value: []byte("v"), Partition: -1}))
	call(t, a, protocol.OpCommit, enc(&protocol.CommitRequest{Topic: "t", Group: "g", Partition: 0, Offset: 1}))

	const (
		authReq  = "authentication required"
		unauth   = "unauthorized"
		disabled = "user account is disabled"
	)
	everyone := []string{"anonymous", "admin", "producer", "consumer", "guest", "deleted", "disabled"}
	rows := []struct {
		name    string
		op      protocol.Op
		payload []byte
		allowed []string
		// denyText overrides the usual texts (audit ops have their own).
		denyText string
	}{
		{"produce", protocol.OpProduce, enc(&protocol.ProduceRequest{Topic: "t", Value: []byte("x"), Partition: -1}), []string{"admin", "producer"}, ""},
		{"consume", protocol.OpConsume, enc(&protocol.ConsumeRequest{Topic: "t", Offset: 0}), []string{"admin", "consumer"}, ""},
		{"consume_zero_copy", protocol.OpConsumeZeroCopy, enc(&protocol.ConsumeRequest{Topic: "t"}), []string{"admin", "consumer"}, ""},
		{"fetch", protocol.OpFetch, enc(&protocol.FetchRequest{Topic: "t", MaxMessages: 1}), []string{"admin", "consumer"}, ""},
		{"fetch_binary", protocol.OpFetchBinary, enc(&protocol.FetchRequest{Topic: "t", MaxMessages: 1}), []string{"admin", "consumer"}, ""},
		{"subscribe", protocol.OpSubscribe, enc(&protocol.SubscribeRequest{Topic: "t", Mode: "earliest"}), []string{"admin", "consumer"}, ""},
		{"commit", protocol.OpCommit, enc(&protocol.CommitRequest{Topic: "t", Group: "g", Offset: 1}), []string{"admin", "consumer"}, ""},
		{"get_offset", protocol.OpGetOffset, enc(&protocol.GroupOffsetRequest{Topic: "t", Group: "g"}), []string{"admin", "consumer"}, ""},
		{"get_lag", protocol.OpGetLag, enc(&protocol.GroupOffsetRequest{Topic: "t", Group: "g"}), []string{"admin", "consumer"}, ""},
		{"create_topic", protocol.OpCreateTopic, enc(&protocol.CreateTopicRequest{Topic: "t2", Partitions: 1}), []string{"admin"}, ""},
		{"reset_offset", protocol.OpResetOffset, enc(&protocol.ResetOffsetRequest{Topic: "t", Group: "g", Mode: "earliest"}), []string{"admin"}, ""},
		{"list_groups", protocol.OpListGroups, nil, []string{"admin"}, ""},
		{"describe_group", protocol.OpDescribeGroup, enc(&protocol.GroupRequest{Topic: "t", Group: "g"}), []string{"admin"}, ""},
		{"list_topics", protocol.OpListTopics, nil, []string{"admin", "producer", "consumer", "guest"}, ""},
		{"cluster_metadata", protocol.OpClusterMetadata, enc(&protocol.ClusterMetadataRequest{Topic: "t"}), []string{"admin", "producer", "consumer", "guest"}, ""},
		{"role_list", protocol.OpRoleList, nil, []string{"admin", "producer", "consumer", "guest"}, ""},
		{"user_list", protocol.OpUserList, nil, []string{"admin"}, ""},
		{"user_get", protocol.OpUserGet, enc(&protocol.NameRequest{Name: "prod"}), []string{"admin"}, ""},
		{"acl_list", protocol.OpACLList, nil, []string{"admin"}, ""},
		{"acl_get", protocol.OpACLGet, enc(&protocol.NameRequest{Name: "t"}), []string{"admin"}, ""},
		{"audit_query", protocol.OpAuditQuery, enc(&protocol.AuditQueryRequest{}), []string{"admin"}, "admin access required for audit queries"},
		// Destructive rows last, on their own names.
		{"delete_group", protocol.OpDeleteGroup, enc(&protocol.GroupRequest{Topic: "t", Group: "g"}), []string{"admin"}, ""},
		{"delete_topic", protocol.OpDeleteTopic, enc(&protocol.TopicRequest{Topic: "t2"}), []string{"admin"}, ""},
	}
	for _, r := range rows {
		for _, who := range everyone {
			op, p := call(t, conns[who], r.op, r.payload)
			allowed := contains(r.allowed, who)
			if allowed {
				if op == protocol.OpError {
					t.Errorf("%s as %s: refused with %q", r.name, who, protocol.DecodeError(p))
				}
				continue
			}
			want := r.denyText
			if want == "" {
				switch who {
				case "anonymous":
					want = authReq
				case "disabled":
					want = disabled
				default:
					want = unauth
				}
			}
			if op != protocol.OpError || protocol.DecodeError(p) != want {
				t.Errorf("%s as %s: got op %v %q, want %q", r.name, who, op, protocol.DecodeError(p), want)
			}
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// TestFailedAuthResetsIdentity: a failed AUTH drops the earlier identity
// (the old server kept it), and WHOAMI says so in the identity layout.
func TestFailedAuthResetsIdentity(t *testing.T) {
	h, _ := authHarness(t, nil)
	c := login(t, h, "admin", adminPass)
	op, p := call(t, c, protocol.OpAuth, enc(&protocol.AuthRequest{Username: "admin", Password: "wrong-password"}))
	var ar protocol.AuthResponse
	if err := ar.Decode(p); err != nil || op != protocol.OpAuthResponse || ar.Success || ar.Error != "invalid username or password" {
		t.Fatalf("failed AUTH: op %v %+v %v", op, ar, err)
	}
	op, p = call(t, c, protocol.OpWhoAmI, nil)
	want := []byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}
	if op != protocol.OpWhoAmI || string(p) != string(want) {
		t.Fatalf("WHOAMI after failed AUTH: op %v %x, want %x", op, p, want)
	}
	op, p = call(t, c, protocol.OpListTopics, nil)
	if op != protocol.OpError || protocol.DecodeError(p) != "authentication required" {
		t.Fatalf("list topics after failed AUTH: %v %q", op, protocol.DecodeError(p))
	}
}

// TestAuthRateLimit: past MaxFailures from one address, AUTH is refused
// in-band with the limit text even with the right password.
func TestAuthRateLimit(t *testing.T) {
	h, _ := authHarness(t, func(o *auth.Options) { o.MaxFailures = 3 })
	c := login(t, h, "", "")
	for range 3 {
		call(t, c, protocol.OpAuth, enc(&protocol.AuthRequest{Username: "admin", Password: "nope-nope"}))
	}
	op, p := call(t, c, protocol.OpAuth, enc(&protocol.AuthRequest{Username: "admin", Password: adminPass}))
	var ar protocol.AuthResponse
	if err := ar.Decode(p); err != nil || op != protocol.OpAuthResponse || ar.Success ||
		ar.Error != "too many failed attempts, try again later" {
		t.Fatalf("4th AUTH: op %v %+v %v", op, ar, err)
	}
}

// TestAuthDisabled follows §3.6: AUTH echoes success, WHOAMI is
// anonymous, user management says authentication is off, data ops pass.
func TestAuthDisabled(t *testing.T) {
	h := startServer(t, harnessOptions{})
	c := h.dial(t)
	defer c.Close()
	op, p := call(t, c, protocol.OpAuth, enc(&protocol.AuthRequest{Username: "bob", Password: "pw"}))
	want := []byte{1, 0, 3, 'b', 'o', 'b', 0, 0, 0, 0, 0, 0}
	if op != protocol.OpAuthResponse || string(p) != string(want) {
		t.Fatalf("AUTH: op %v %x want %x", op, p, want)
	}
	op, p = call(t, c, protocol.OpWhoAmI, nil)
	if op != protocol.OpWhoAmI || p[0] != 0 {
		t.Fatalf("WHOAMI: %v %x", op, p)
	}
	op, p = call(t, c, protocol.OpUserList, nil)
	if op != protocol.OpError || protocol.DecodeError(p) != "authentication is not enabled" {
		t.Fatalf("USER_LIST: %v %q", op, protocol.DecodeError(p))
	}
	op, p = call(t, c, protocol.OpRoleList, nil)
	var rl protocol.RoleList
	if op != protocol.OpRoleList || rl.Decode(p) != nil || len(rl.Roles) != 4 || rl.Roles[0].Name != "admin" {
		t.Fatalf("ROLE_LIST: %v %+v", op, rl)
	}
	op, _ = call(t, c, protocol.OpProduce, enc(&protocol.ProduceRequest{Topic: "open", Value: []byte("v"), Partition: -1}))
	if op != protocol.OpProduce {
		t.Fatalf("produce with auth off: %v", op)
	}
}

// TestAuthAndWhoAmIBytes pins the reply layouts the clients decode:
// AUTH success in the upstream form with real role names, WHOAMI in the
// identity layout with effective permissions (§4.1, §4.2).
func TestAuthAndWhoAmIBytes(t *testing.T) {
	h, _ := authHarness(t, nil)
	c := h.dial(t)
	defer c.Close()
	frame := func(op protocol.Op, p []byte) []byte { return protocol.AppendFrame(nil, op, protocol.FlagBinary, p) }
	op, p := call(t, c, protocol.OpAuth, enc(&protocol.AuthRequest{Username: "admin", Password: adminPass}))
	got := frame(op, p)
	want := mustHex(t, "af0171010000001401000561646d696e000000010561646d696e0000")
	if string(got) != string(want) {
		t.Fatalf("AUTH reply\n got %x\nwant %x", got, want)
	}
	op, p = call(t, c, protocol.OpWhoAmI, nil)
	got = frame(op, p)
	want = mustHex(t, "af017201000000240100056164"+"6d696e000000000000000300047265616400057772697465000561646d696e")
	if string(got) != string(want) {
		t.Fatalf("WHOAMI reply\n got %x\nwant %x", got, want)
	}
}

// TestBigFramesNeedAuthentication: with authentication on and anonymous
// access off, a connection that has not authenticated cannot make the
// broker buffer a big frame; after AUTH the full 32 MiB limit applies.
func TestBigFramesNeedAuthentication(t *testing.T) {
	h, _ := authHarness(t, nil)
	big := enc(&protocol.ProduceRequest{Topic: "t", Value: make([]byte, 100<<10), Partition: -1})

	anon := h.dial(t)
	defer anon.Close()
	if _, err := anon.Write(protocol.AppendFrame(nil, protocol.OpProduce, protocol.FlagBinary, big)[:protocol.HeaderSize]); err != nil {
		t.Fatal(err)
	}
	anon.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := anon.Read(make([]byte, 16)); n != 0 || err == nil {
		t.Fatalf("anonymous 100 KiB frame: read %d bytes, %v; want the connection closed", n, err)
	}

	c := login(t, h, "admin", adminPass)
	if op, p := call(t, c, protocol.OpProduce, big); op != protocol.OpProduce {
		t.Fatalf("100 KiB produce after AUTH: %v %q", op, protocol.DecodeError(p))
	}
	// Small requests before AUTH still get their answer.
	small := h.dial(t)
	defer small.Close()
	if op, p := call(t, small, protocol.OpListTopics, nil); op != protocol.OpError || protocol.DecodeError(p) != "authentication required" {
		t.Fatalf("anonymous LIST_TOPICS: %v %q", op, protocol.DecodeError(p))
	}
}
