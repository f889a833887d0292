package audit

import (
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"
)

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func openLog(t *testing.T, opts Options) (*Log, *clock) {
	t.Helper()
	c := &clock{t: time.Date(2026, 12, 3, 12, 41, 42, 0, time.UTC)}
	if opts.Dir == "" {
		opts.Dir = t.TempDir()
	}
	if opts.Now == nil {
		opts.Now = c.now
	}
	l, err := Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	return l, c
}

func TestRecordFillsFields(t *testing.T) {
	l, _ := openLog(t, Options{NodeID: "node-test"})
	l.Record(Event{Type: TypeAuthFailure, User: "bob", ClientIP: "127.0.0.1", Action: "authenticate",
		Result: ResultFailure, Details: map[string]string{"reason": "user account is disabled"}})
	res, err := l.Query(Query{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Total != 1 || len(res.Events) != 1 || res.HasMore {
		t.Fatalf("got %+v", res)
	}
	ev := res.Events[0]
	uuid4 := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	if !uuid4.MatchString(ev.ID) {
		t.Fatalf("id %q is not a UUID v4", ev.ID)
	}
	if ev.NodeID != "node-test" || !ev.Timestamp.Equal(time.Date(2026, 12, 3, 12, 41, 42, 0, time.UTC)) ||
		ev.Details["reason"] != "user account is disabled" {
		t.Fatalf("got %+v", ev)
	}
	if _, err := os.Stat(filepath.Join(l.opts.Dir, "audit-2026-12-03.log")); err != nil {
		t.Fatal(err)
	}
}

func TestUUIDsDiffer(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		id := newUUID()
		if seen[id] {
			t.Fatalf("duplicate %s", id)
		}
		seen[id] = true
	}
}

// seed records events one second apart, oldest first.
func seed(l *Log, c *clock, evs ...Event) {
	for _, ev := range evs {
		c.t = c.t.Add(time.Second)
		l.Record(ev)
	}
}

func ids(evs []Event) string {
	var s []string
	for _, e := range evs {
		s = append(s, e.Resource)
	}
	return strings.Join(s, ",")
}

func TestQuerySemantics(t *testing.T) {
	l, c := openLog(t, Options{})
	start := c.t
	seed(l, c,
		Event{Type: TypeUserCreate, User: "admin", Resource: "alice", Action: "user_create", Result: ResultSuccess,
			Details: map[string]string{"roles": "[producer]"}},
		Event{Type: TypeUserCreate, User: "admin", Resource: "bob", Action: "user_create", Result: ResultSuccess,
			Details: map[string]string{"roles": "[Consumer]"}},
		Event{Type: TypeAuthFailure, User: "nobody", Resource: "", Action: "authenticate", Result: ResultFailure},
		Event{Type: TypeTopicCreate, User: "admin2", Resource: "orders", Action: "create_topic", Result: ResultSuccess},
		Event{Type: TypeAccessDenied, User: "alice", Resource: "orders-eu", Action: "produce", Result: ResultDenied},
	)
	cases := []struct {
		name    string
		q       Query
		want    string
		total   int
		hasMore bool
	}{
		{"all newest first", Query{}, "orders-eu,orders,,bob,alice", 5, false},
		{"limit", Query{Limit: 2}, "orders-eu,orders", 5, true},
		{"offset", Query{Limit: 2, Offset: 2}, ",bob", 5, true},
		{"last page", Query{Limit: 2, Offset: 4}, "alice", 5, false},
		{"offset past end", Query{Offset: 9}, "", 5, false},
		{"negative limit and offset", Query{Limit: -1, Offset: -5}, "orders-eu,orders,,bob,alice", 5, false},
		{"types any of", Query{EventTypes: []string{TypeTopicCreate, TypeAuthFailure}}, "orders,", 2, false},
		{"user exact", Query{User: "admin"}, "bob,alice", 2, false},
		{"resource substring", Query{Resource: "orders"}, "orders-eu,orders", 2, false},
		{"result exact", Query{Result: ResultDenied}, "orders-eu", 1, false},
		{"search detail case-insensitive", Query{Search: "consumer"}, "bob", 1, false},
		{"search action", Query{Search: "AUTHENTICATE"}, "", 1, false},
		{"start bound", Query{Start: start.Add(4 * time.Second)}, "orders-eu,orders", 2, false},
		{"end bound", Query{End: start.Add(2 * time.Second)}, "bob,alice", 2, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res, err := l.Query(tc.q)
			if err != nil {
				t.Fatal(err)
			}
			if got := ids(res.Events); got != tc.want || res.Total != tc.total || res.HasMore != tc.hasMore {
				t.Fatalf("got %q total %d more %v, want %q %d %v", got, res.Total, res.HasMore,
					tc.want, tc.total, tc.hasMore)
			}
		})
	}
}

func TestDefaultLimit(t *testing.T) {
	l, c := openLog(t, Options{})
	for range 150 {
		seed(l, c, Event{Type: TypeAuthSuccess})
	}
	res, err := l.Query(Query{Limit: 0})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Events) != 100 || res.Total != 150 || !res.HasMore {
		t.Fatalf("got %d events, total %d, more %v", len(res.Events), res.Total, res.HasMore)
	}
}

func TestRotationAndReopen(t *testing.T) {
	dir := t.TempDir()
	l, c := openLog(t, Options{Dir: dir, MaxFileSize: 600})
	for range 10 {
		seed(l, c, Event{Type: TypeAuthSuccess, User: "alice"})
	}
	c.t = c.t.Add(24 * time.Hour) // next day opens a new file
	seed(l, c, Event{Type: TypeAuthSuccess, User: "bob"})
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	var names []string
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		names = append(names, e.Name())
		st, _ := e.Info()
		if st.Size() > 600 {
			t.Errorf("%s has %d bytes, over the 600 limit", e.Name(), st.Size())
		}
	}
	sort.Strings(names)
	if len(names) < 4 || names[0] != "audit-2026-12-03.1.log" || names[len(names)-1] != "audit-2026-12-04.log" {
		t.Fatalf("files %v", names)
	}
	l2, _ := openLog(t, Options{Dir: dir, MaxFileSize: 600})
	res, err := l2.Query(Query{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Total != 11 || res.Events[0].User != "bob" {
		t.Fatalf("after reopen: total %d, newest %q", res.Total, res.Events[0].User)
	}
}

func TestRetention(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"audit-2026-08-01.log", "audit-2026-09-03.2.log", "audit-2026-09-04.log", "notes.txt"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("{}\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	openLog(t, Options{Dir: dir, RetentionDays: 90}) // today 2026-12-03, cutoff 2026-09-04
	var names []string
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		names = append(names, e.Name())
	}
	if got := strings.Join(names, " "); got != "audit-2026-09-04.log notes.txt" {
		t.Fatalf("left %q", got)
	}
}

func exportFixture(t *testing.T) *Log {
	l, c := openLog(t, Options{NodeID: "node-test"})
	c.t = time.Date(2026, 12, 3, 12, 41, 42, 500, time.UTC)
	l.Record(Event{ID: "2e1dad25-892c-4e98-91bc-2953362cb35d", Type: TypeUserCreate, User: "admin",
		ClientIP: "127.0.0.1", Resource: "alice", Action: "user_create", Result: ResultFailure,
		Details: map[string]string{"error": `user "alice" already exists`}})
	c.t = c.t.Add(time.Second)
	l.Record(Event{ID: "ef293e99-c551-41ce-baac-676d7dd4c272", Type: TypeUserCreate, User: "admin2",
		ClientIP: "127.0.0.1", Resource: "zed", Action: "user_create", Result: ResultSuccess,
		Details: map[string]string{"roles": "[admin]"}})
	return l
}

func TestExportCSV(t *testing.T) {
	l := exportFixture(t)
	got, err := l.Export(Query{EventTypes: []string{TypeUserCreate}, Limit: 1}, "csv")
	if err != nil {
		t.Fatal(err)
	}
	// Same shape as the audit_export.csv upstream capture.
	want := "ID,Timestamp,Type,User,ClientIP,Resource,Action,Result,NodeID,Details\n" +
		`ef293e99-c551-41ce-baac-676d7dd4c272,2026-12-03T12:41:43Z,user.create,admin2,127.0.0.1,zed,user_create,success,node-test,"{""roles"":""[admin]""}"` + "\n" +
		`2e1dad25-892c-4e98-91bc-2953362cb35d,2026-12-03T12:41:42Z,user.create,admin,127.0.0.1,alice,user_create,failure,node-test,"{""error"":""user \""alice\"" already exists""}"` + "\n"
	if string(got) != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
}

func TestExportJSON(t *testing.T) {
	l := exportFixture(t)
	got, err := l.Export(Query{User: "admin2"}, "json")
	if err != nil {
		t.Fatal(err)
	}
	want := `[
  {
    "id": "ef293e99-c551-41ce-baac-676d7dd4c272",
    "timestamp": "2026-12-03T12:41:43.0000005Z",
    "type": "user.create",
    "user": "admin2",
    "client_ip": "127.0.0.1",
    "resource": "zed",
    "action": "user_create",
    "result": "success",
    "details": {
      "roles": "[admin]"
    },
    "node_id": "node-test"
  }
]`
	if string(got) != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
	for _, format := range []string{"json", "xml"} {
		got, err = l.Export(Query{User: "nobody"}, format)
		if err != nil || string(got) != "[]" {
			t.Fatalf("%s, no match: %q, %v", format, got, err)
		}
	}
}

func TestNilLogRecordsNothing(t *testing.T) {
	var l *Log
	l.Record(Event{Type: TypeAuthSuccess})
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
}

func BenchmarkRecord(b *testing.B) {
	l, err := Open(Options{Dir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	ev := Event{Type: TypeAuthSuccess, User: "alice", ClientIP: "127.0.0.1", Action: "authenticate",
		Result: ResultSuccess, Details: map[string]string{"roles": "[producer]"}}
	for b.Loop() {
		l.Record(ev)
	}
}
