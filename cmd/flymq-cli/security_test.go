package main

import (
	"encoding/hex"
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/flymq/flymq/internal/protocol"
)

// secVectorsPath is the repo copy of the spec's security vectors.
const secVectorsPath = "../../testdata/vectors/security-and-advanced.json"

// secVectorHandler answers each request of the security vectors with its
// reply (the required ".expected" one where the spec gives it). Requests
// sent by several sessions get the admin session's reply.
func secVectorHandler(t *testing.T) handler {
	t.Helper()
	data, err := os.ReadFile(secVectorsPath)
	if err != nil {
		t.Fatal(err)
	}
	var vs []struct {
		Name, Direction, Hex string
		Fields               struct{ Session string }
	}
	if err := json.Unmarshal(data, &vs); err != nil {
		t.Fatal(err)
	}
	type pair struct {
		req, session    string
		reply           []byte
		replyIsRequired bool
	}
	byPrefix := map[string]*pair{}
	var order []string
	for _, v := range vs {
		name := v.Name
		i := strings.LastIndexByte(name, '.')
		prefix, kind := name[:i], name[i+1:]
		switch kind {
		case "request":
			byPrefix[prefix] = &pair{req: v.Hex, session: v.Fields.Session}
			order = append(order, prefix)
		case "response", "expected":
			p := byPrefix[prefix]
			if p == nil || p.replyIsRequired {
				continue
			}
			p.reply, _ = hex.DecodeString(v.Hex)
			p.replyIsRequired = kind == "expected"
		}
	}
	replies := map[string][]byte{}
	admin := map[string]bool{}
	for _, prefix := range order {
		p := byPrefix[prefix]
		if p.reply == nil {
			continue
		}
		if _, seen := replies[p.req]; !seen || (p.session == "admin" && !admin[p.req]) {
			replies[p.req] = p.reply
			admin[p.req] = p.session == "admin"
		}
	}
	return func(h protocol.Header, p []byte) []byte {
		frame := hex.EncodeToString(protocol.AppendFrame(nil, h.Op, h.Flags, p))
		if r, ok := replies[frame]; ok {
			return r
		}
		return protocol.AppendError(nil, "no vector for "+frame)
	}
}

// TestSecurityCommandsAgainstVectors: each command sends the upstream Go
// client's bytes (the fake broker answers only those) and prints the
// reply; passwords never reach stdout or stderr.
func TestSecurityCommandsAgainstVectors(t *testing.T) {
	addr := startServer(t, secVectorHandler(t))
	cases := []struct {
		env   map[string]string
		stdin string
		args  []string
		code  int
		out   string
	}{
		{nil, "alicepw\n", []string{"users", "add", "alice", "--roles", "producer"}, 0,
			"created user alice (roles: producer)\n"},
		{map[string]string{envNewPassword: "other"}, "", []string{"users", "add", "alice", "--roles", "producer"}, 1, ""},
		{nil, "", []string{"users", "add", "dave", "--roles", "superuser", "--new-password", "davepw"}, 0,
			"created user dave (roles: superuser)\n"},
		{nil, "", []string{"users", "add", "alice"}, 2, ""}, // no password anywhere
		{nil, "", []string{"users", "get", "alice"}, 0,
			"username:    alice\nroles:       producer\npermissions: write\nstatus:      enabled\n" +
				"created:     2026-12-03T12:41:42Z\nupdated:     2026-12-03T12:41:42Z\n"},
		{nil, "", []string{"users", "get", "nobody"}, 1, ""},
		{nil, "", []string{"users", "update", "dave", "--roles", "consumer", "--enabled"}, 0,
			"updated user dave (roles: consumer) (enabled)\n"},
		{nil, "", []string{"users", "update", "bob", "--roles", "consumer", "--enabled=false"}, 0,
			"updated user bob (roles: consumer) (disabled)\n"},
		{nil, "", []string{"users", "update", "zed", "--roles", "admin"}, 0, "updated user zed (roles: admin)\n"},
		{nil, "", []string{"users", "update", "zed"}, 2, ""},
		{nil, "", []string{"users", "delete", "dave"}, 0, "deleted user dave\n"},
		{nil, "", []string{"users", "delete", "admin"}, 1, ""},
		// Someone else's password: no current password is sent.
		{nil, "alicepw3\n", []string{"users", "passwd", "alice"}, 0, "changed the password of alice\n"},
		{map[string]string{envOldPassword: "alicepw", envNewPassword: "alicepw2"}, "",
			[]string{"users", "passwd", "alice"}, 0, "changed the password of alice\n"},
		// Own password: the login password is the current one.
		{map[string]string{"FLYMQ_USERNAME": "alice", "FLYMQ_PASSWORD": "alicepw"}, "alicepw2\n",
			[]string{"users", "passwd"}, 0, "changed the password of alice\n"},
		{nil, "", []string{"users", "passwd"}, 2, ""},
		{nil, "", []string{"acl", "set", "shared", "--users", "alice", "--roles", "consumer"}, 0,
			"set the access list of shared\n"},
		{nil, "", []string{"acl", "set", "news", "--public"}, 1, ""},
		{nil, "", []string{"acl", "get", "shared"}, 0, "shared\tpublic=false\tusers=alice\troles=consumer\n"},
		{nil, "", []string{"acl", "get", "orders"}, 0, "orders: no access list (default public: false)\n"},
		{nil, "", []string{"acl", "list"}, 0,
			"shared\tpublic=false\tusers=alice\troles=consumer\ntmp\tpublic=false\tusers=\troles=\ndefault public: false\n"},
		{nil, "", []string{"acl", "delete", "tmp"}, 0, "deleted the access list of tmp\n"},
		{nil, "", []string{"whoami"}, 0, "admin (permissions: read,write,admin)\n"},
		{nil, "", []string{"audit", "export", "--format", "xml"}, 2, ""},
		{nil, "", []string{"audit", "query", "--start", "yesterday"}, 2, ""},
	}
	for _, c := range cases {
		env := map[string]string{"FLYMQ_ADDR": addr}
		for k, v := range c.env {
			env[k] = v
		}
		r := cli(t, env, c.stdin, c.args...)
		if r.code != c.code || (c.code == 0 && r.out != c.out) || (c.code != 0 && r.out != "") {
			t.Errorf("%v: code %d out %q (stderr %q), want %d %q", c.args, r.code, r.out, r.err, c.code, c.out)
		}
		for _, pw := range []string{"alicepw", "davepw", "other"} {
			if strings.Contains(r.out+r.err, pw) {
				t.Errorf("%v: output shows a password: %q %q", c.args, r.out, r.err)
			}
		}
	}

	env := map[string]string{"FLYMQ_ADDR": addr}
	if r := cli(t, env, "", "users", "delete", "admin"); !strings.Contains(r.err, "server error: cannot delete your own account") {
		t.Errorf("delete self stderr = %q", r.err)
	}
	r := cli(t, env, "", "roles")
	if r.code != 0 || !strings.Contains(r.out, "consumer\tread\tRead-only access (consume messages)\n") ||
		strings.Count(r.out, "\n") != 4 {
		t.Errorf("roles: %+v", r)
	}
	r = cli(t, env, "", "audit", "query", "--type", "auth.failure", "--limit", "2")
	if r.code != 0 || !strings.HasPrefix(r.out, "2026-12-03T") ||
		!strings.Contains(r.out, "\tauth.failure\tuser=bob\tip=127.0.0.1\tresource=\taction=authenticate\tresult=failure\treason=user account is disabled\n") ||
		!strings.HasSuffix(r.out, "2 of 3 events (more: use --offset)\n") {
		t.Errorf("audit query: %+v", r)
	}
	r = cli(t, env, "", "audit", "export", "--type", "user.create", "--format", "csv")
	if r.code != 0 || !strings.HasPrefix(r.out, "ID,Timestamp,Type,User,ClientIP,Resource,Action,Result,NodeID,Details\n") ||
		len(r.out) != 989 {
		t.Errorf("audit export: %d bytes %+v", len(r.out), r)
	}
	out := t.TempDir() + "/audit.csv"
	if r := cli(t, env, "", "audit", "export", "--type", "user.create", "--format", "csv", "-o", out); r.code != 0 || r.out != "" {
		t.Errorf("audit export -o: %+v", r)
	}
	if fi, err := os.Stat(out); err != nil || fi.Size() != 989 || fi.Mode().Perm() != 0o600 {
		t.Errorf("export file: %v %v", fi, err)
	}
}

func TestSecurityJSONOutput(t *testing.T) {
	addr := startServer(t, secVectorHandler(t))
	env := map[string]string{"FLYMQ_ADDR": addr}
	cases := []struct {
		args []string
		out  string
	}{
		{[]string{"whoami", "--json"}, `{"authenticated":true,"permissions":["read","write","admin"],"username":"admin"}`},
		{[]string{"users", "get", "alice", "--json"},
			`{"username":"alice","roles":["producer"],"permissions":["write"],"enabled":true,` +
				`"created_at":"2026-12-03T12:41:42Z","updated_at":"2026-12-03T12:41:42Z"}`},
		{[]string{"acl", "get", "shared", "--json"},
			`{"topic":"shared","exists":true,"public":false,"default_public":false,"allowed_users":["alice"],"allowed_roles":["consumer"]}`},
		{[]string{"acl", "list", "--json"},
			`{"acls":[{"topic":"shared","exists":true,"public":false,"allowed_users":["alice"],"allowed_roles":["consumer"]},` +
				`{"topic":"tmp","exists":true,"public":false,"allowed_users":[],"allowed_roles":[]}],"default_public":false}`},
		{[]string{"users", "update", "zed", "--roles", "admin", "--json"}, `{"roles":["admin"],"updated":true,"username":"zed"}`},
	}
	for _, c := range cases {
		r := cli(t, env, "", c.args...)
		if r.code != 0 || r.out != c.out+"\n" {
			t.Errorf("%v: code %d out %q (stderr %q), want %q", c.args, r.code, r.out, r.err, c.out)
		}
	}
	r := cli(t, env, "", "audit", "query", "--type", "auth.failure", "--limit", "2", "--json")
	var q struct {
		Events []struct {
			Type    string            `json:"type"`
			User    string            `json:"user"`
			Details map[string]string `json:"details"`
		} `json:"events"`
		Total   int  `json:"total_count"`
		HasMore bool `json:"has_more"`
	}
	if err := json.Unmarshal([]byte(r.out), &q); err != nil || len(q.Events) != 2 || q.Events[0].User != "bob" ||
		q.Events[0].Details["reason"] != "user account is disabled" || q.Total != 3 || !q.HasMore {
		t.Errorf("audit query --json: %v %+v %q", err, q, r.out)
	}
}
