package config

import (
	"reflect"
	"slices"
	"strings"
)

// EnvPrefix starts every environment variable the broker reads.
const EnvPrefix = "FLYMQ_"

// legacyEnv holds the short environment names the old server documented,
// kept so existing unit files and container specs work unchanged. The
// canonical name (EnvName) wins when both are set.
var legacyEnv = map[string]string{
	"security.tls_cert_file": "FLYMQ_TLS_CERT_FILE",
	"security.tls_key_file":  "FLYMQ_TLS_KEY_FILE",
	"security.tls_ca_file":   "FLYMQ_TLS_CA_FILE",
	"security.tls_enabled":   "FLYMQ_TLS_ENABLED",
	"auth.admin_username":    "FLYMQ_AUTH_ADMIN_USERNAME",
	"auth.admin_password":    "FLYMQ_AUTH_ADMIN_PASSWORD",
	"auth.default_public":    "FLYMQ_AUTH_DEFAULT_PUBLIC",
	"auth.user_file":         "FLYMQ_AUTH_USER_FILE",
	"auth.acl_file":          "FLYMQ_AUTH_ACL_FILE",
	"auth.enabled":           "FLYMQ_AUTH_ENABLED",
	"data_dir":               "FLYMQ_DATA_DIR",
	"bind_addr":              "FLYMQ_BIND_ADDR",
	"log_level":              "FLYMQ_LOG_LEVEL",
}

// Keys lists every setting this broker implements as a dotted key, in
// declaration order (the order of configs/flymq.json).
func Keys() []string {
	var keys []string
	walk(reflect.TypeFor[Config](), "", func(key string, leaf bool) {
		if leaf {
			keys = append(keys, key)
		}
	})
	return keys
}

// EnvNames returns the environment variables that set key, highest
// precedence first: the canonical FLYMQ_ name, then the old short name if
// there is one.
func EnvNames(key string) []string {
	names := []string{EnvName(key)}
	if old, ok := legacyEnv[key]; ok && old != names[0] {
		names = append(names, old)
	}
	return names
}

// EnvName is the canonical environment variable of key:
// security.tls_cert_file ⇒ FLYMQ_SECURITY_TLS_CERT_FILE.
func EnvName(key string) string {
	return EnvPrefix + strings.ToUpper(strings.ReplaceAll(key, ".", "_"))
}

// Ignored takes the dotted leaf keys found in a configuration source and
// returns, sorted and without duplicates, those this broker does not
// implement. Each is reported at its shortest unknown prefix: a whole
// "schema" section is one entry, while "auth.rbac_enabled" names the single
// unknown key inside a known section.
func Ignored(found []string) []string {
	known := map[string]bool{}
	walk(reflect.TypeFor[Config](), "", func(key string, _ bool) { known[key] = true })
	var out []string
	for _, k := range found {
		k = strings.ToLower(k)
		parts := strings.Split(k, ".")
		for i := range parts {
			prefix := strings.Join(parts[:i+1], ".")
			if !known[prefix] {
				out = append(out, prefix)
				break
			}
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// walk calls fn for every section (leaf=false) and setting (leaf=true) of
// the struct type t, named by the json tags joined with ".".
func walk(t reflect.Type, prefix string, fn func(key string, leaf bool)) {
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "" || name == "-" {
			continue
		}
		key := prefix + name
		if f.Type.Kind() == reflect.Struct {
			fn(key, false)
			walk(f.Type, key+".", fn)
			continue
		}
		fn(key, true)
	}
}
