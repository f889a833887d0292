package schema

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/flymq/flymq/internal/crypto"
)

const (
	ordersV1  = `{"type":"object","required":["id"],"properties":{"id":{"type":"integer"},"note":{"type":"string"}}}`
	ordersV2  = `{"type":"object","required":["id"],"properties":{"id":{"type":"integer"},"note":{"type":"string"},"qty":{"type":"integer"}}}`
	badCompat = `{"type":"object","required":["id","customer"],"properties":{"id":{"type":"integer"}}}`
)

func keyring(t *testing.T) *crypto.Keyring {
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

func open(t *testing.T, dir string, kr *crypto.Keyring) *Registry {
	t.Helper()
	r, err := Open(Options{Dir: dir, Keyring: kr})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestRegisterGetListDelete(t *testing.T) {
	dir, kr := t.TempDir(), keyring(t)
	r := open(t, dir, kr)
	s, err := r.Register("orders", "json", []byte(ordersV1))
	if err != nil || s.Version != 1 || s.ID() != "orders-v1" {
		t.Fatalf("register v1: %+v %v", s, err)
	}
	_, err = r.Register("orders", "json", []byte(badCompat))
	if want := "failed to register schema: schema compatibility check failed: new required field 'customer' not in old schema"; err == nil || err.Error() != want {
		t.Fatalf("incompatible: %v", err)
	}
	if s, err = r.Register("orders", "json", []byte(ordersV2)); err != nil || s.Version != 2 {
		t.Fatalf("register v2: %+v %v", s, err)
	}
	if s, err = r.Register("users", "avro", []byte(`{"type":"record","name":"U","fields":[{"name":"n","type":"string"}]}`)); err != nil || s.Version != 1 {
		t.Fatalf("register avro: %+v %v", s, err)
	}
	for _, c := range []struct{ name, typ, def, want string }{
		{"orders", "xml", "<x/>", "unsupported schema type: xml"},
		{"broken", "json", "{not json", "failed to register schema: invalid schema definition: invalid JSON schema: invalid character 'n' looking for beginning of object key string"},
		{"p", "protobuf", "", "failed to register schema: invalid schema definition: schema definition cannot be empty"},
	} {
		if _, err := r.Register(c.name, c.typ, []byte(c.def)); err == nil || err.Error() != c.want {
			t.Errorf("register %s/%s: %v, want %q", c.name, c.typ, err, c.want)
		}
	}
	var ids []string
	for _, s := range r.List("") {
		ids = append(ids, s.ID())
	}
	if !slices.Equal(ids, []string{"orders-v1", "orders-v2", "users-v1"}) {
		t.Fatalf("list: %v", ids)
	}
	if got, err := r.Get("orders", 0); err != nil || got.Version != 2 || string(got.Definition) != ordersV2 || got.Compatibility != "backward" {
		t.Fatalf("get latest: %+v %v", got, err)
	}
	if _, err := r.Get("orders", 9); err == nil || err.Error() != "schema not found: orders v9" {
		t.Fatalf("get v9: %v", err)
	}
	if _, err := r.Get("nothing", 0); err == nil || err.Error() != "no schema found for topic: nothing" || !errors.Is(err, ErrNotFound) {
		t.Fatalf("get missing: %v", err)
	}

	// Deleting the latest moves "latest" back (the old server crashed here).
	if err := r.Delete("orders", 2); err != nil {
		t.Fatal(err)
	}
	if got, err := r.Get("orders", 0); err != nil || got.Version != 1 {
		t.Fatalf("latest after delete: %+v %v", got, err)
	}
	if errs := r.Validate("orders", []byte(`{"id":1}`)); errs != nil {
		t.Fatalf("validate after delete: %v", errs)
	}
	if err := r.Delete("orders", 7); err == nil || err.Error() != "failed to delete schema: schema not found: orders v7" {
		t.Fatalf("delete v7: %v", err)
	}

	// Reopen: everything persisted, sealed, version numbers not reused.
	r = open(t, dir, kr)
	if s, err = r.Register("orders", "json", []byte(ordersV2)); err != nil || s.Version != 3 {
		t.Fatalf("register after reopen: %+v %v", s, err)
	}
	if err := r.Delete("orders", 0); err != nil {
		t.Fatal(err)
	}
	if r.Has("orders") || r.Delete("orders", 0) == nil {
		t.Fatal("orders still present after delete all")
	}
	if s, err = r.Register("orders", "json", []byte(ordersV1)); err != nil || s.Version != 4 {
		t.Fatalf("register after delete all: %+v %v", s, err)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*"))
	for _, f := range files {
		b, _ := os.ReadFile(f)
		if bytes.Contains(b, []byte("orders")) || bytes.Contains(b, []byte("required")) {
			t.Fatalf("%s holds plaintext", f)
		}
	}
	if _, err := Open(Options{Dir: dir, Keyring: keyring(t)}); err == nil {
		t.Fatal("opened with the wrong key")
	}
}

func TestNamesValidatedBeforePaths(t *testing.T) {
	dir := t.TempDir()
	r := open(t, filepath.Join(dir, "schemas"), nil)
	for _, name := range []string{"../x", "a/b", `a\b`, "..", "x\x00y", "tab\there", "", string(make([]byte, 256))} {
		_, err := r.Register(name, "json", []byte(`{}`))
		if !errors.Is(err, ErrInvalidName) {
			t.Errorf("name %q: %v", name, err)
		}
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 || ents[0].Name() != "schemas" {
		t.Fatalf("data dir holds %v", ents)
	}
	if _, err := r.Register("ok.name-1", "json", []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
}

func TestJSONValidationMessages(t *testing.T) {
	r := open(t, t.TempDir(), nil)
	if _, err := r.Register("orders", "json", []byte(ordersV1)); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Register("strict", "json", []byte(`{"type":"object","additionalProperties":false,
		"properties":{"a":{"type":"object","required":["b"],"properties":{"b":{"type":"number"},"c":{"type":"boolean"}}}}}`)); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, msg string
		want      []string
	}{
		{"orders", `{"id":1,"note":"a"}`, nil},
		{"orders", `{"note":5}`, []string{"missing required field: id", "type mismatch at note: expected string, got integer"}},
		{"orders", `{"note":"x"}`, []string{"missing required field: id"}},
		{"orders", `{"id":1.5}`, []string{"type mismatch at id: expected integer, got number"}},
		{"orders", `[1]`, []string{"invalid JSON message: json: cannot unmarshal array into Go value of type map[string]interface {}"}},
		{"orders", `{x`, []string{"invalid JSON message: invalid character 'x' looking for beginning of object key string"}},
		{"strict", `{"a":{"b":2,"c":"no"},"z":1}`, []string{"type mismatch at a.c: expected boolean, got string", "unexpected field: z"}},
		{"strict", `{"a":{}}`, []string{"missing required field: a.b"}},
		{"unregistered", `anything`, nil},
	}
	for _, c := range cases {
		if got := r.Validate(c.name, []byte(c.msg)); !slices.Equal(got, c.want) {
			t.Errorf("%s %s: %q, want %q", c.name, c.msg, got, c.want)
		}
	}
}

func TestExternalRefsRefused(t *testing.T) {
	r := open(t, t.TempDir(), nil)
	_, err := r.Register("x", "json", []byte(`{"$ref":"file:///etc/passwd"}`))
	if !errors.Is(err, ErrInvalidDefinition) {
		t.Fatalf("file $ref: %v", err)
	}
}

func TestAvroAndProtobuf(t *testing.T) {
	r := open(t, t.TempDir(), nil)
	avro := `{"type":"record","name":"User","namespace":"ex","fields":[
		{"name":"name","type":"string"},{"name":"age","type":["null","int"]},
		{"name":"tags","type":{"type":"array","items":"string"}},
		{"name":"kind","type":{"type":"enum","name":"K","symbols":["A","B"]}}]}`
	if _, err := r.Register("users", "avro", []byte(avro)); err != nil {
		t.Fatal(err)
	}
	// name "bo", age = union branch 1 int 21, tags ["x"], kind B.
	good := []byte{4, 'b', 'o', 2, 42, 2, 2, 'x', 0, 2}
	if errs := r.Validate("users", good); errs != nil {
		t.Fatalf("valid avro: %v", errs)
	}
	for _, bad := range [][]byte{good[:5], append(append([]byte(nil), good...), 0), {4, 'b', 'o', 4}} {
		errs := r.Validate("users", bad)
		if len(errs) != 1 || len(errs[0]) < 22 || errs[0][:22] != "Avro validation failed" {
			t.Errorf("avro %x: %v", bad, errs)
		}
	}
	if errs := r.Validate("users", nil); !slices.Equal(errs, []string{"empty message"}) {
		t.Fatalf("empty avro: %v", errs)
	}
	if _, err := r.Register("pb", "proto", []byte("syntax = \"proto3\"; message M { int32 a = 1; }")); err != nil {
		t.Fatal(err)
	}
	if s, _ := r.Get("pb", 0); s.Type != "proto" {
		t.Fatalf("type spelling not kept: %q", s.Type)
	}
	if errs := r.Validate("pb", []byte{0x08, 0x96, 0x01, 0x12, 0x01, 'x'}); errs != nil {
		t.Fatalf("valid protobuf: %v", errs)
	}
	for _, bad := range [][]byte{{0x08}, {0x12, 0x05, 'x'}, {0x0f}, {0x00, 0x01}} {
		errs := r.Validate("pb", bad)
		if len(errs) != 1 || len(errs[0]) < 29 || errs[0][:29] != "invalid Protobuf wire format:" {
			t.Errorf("protobuf %x: %v", bad, errs)
		}
	}
}

func FuzzAvroValidate(f *testing.F) {
	v := newAvroValidator([]byte(`{"type":"record","name":"R","fields":[{"name":"a","type":{"type":"map","values":["null","R"]}},{"name":"b","type":"bytes"}]}`))
	f.Add([]byte{0, 0})
	f.Add([]byte{1, 2, 'k', 0, 0, 0})
	// A forged map block count: a generic library decoder looped on it.
	f.Add([]byte("\xbd\xe1\xe1\xe1\xe1\xe1\xe1\xe1\x83\x00"))
	f.Fuzz(func(t *testing.T, p []byte) {
		v.validate(p)
		protobufValidator{}.validate(p)
	})
}
