package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/go-viper/mapstructure/v2"
	"github.com/spf13/pflag"
	"github.com/spf13/viper"

	"github.com/flymq/flymq/internal/config"
)

// Environment variables that carry key material rather than settings. They
// are read by loadKeyring only, never through viper, so a key can never end
// up in a config dump.
const (
	envKey              = "FLYMQ_ENCRYPTION_KEY"
	envKeyFile          = "FLYMQ_ENCRYPTION_KEY_FILE"
	envPreviousKeys     = "FLYMQ_ENCRYPTION_PREVIOUS_KEYS"
	envPreviousKeysFile = "FLYMQ_ENCRYPTION_PREVIOUS_KEYS_FILE"
	// envCredentialsDir is set by systemd for units with LoadCredential=;
	// the credential files inside are named as below.
	envCredentialsDir  = "CREDENTIALS_DIRECTORY"
	credentialKey      = "flymq-encryption-key"
	credentialPrevious = "flymq-encryption-previous-keys"
)

const (
	flagLogFormat    = "log-format"
	logFormatJSON    = "json"
	logFormatConsole = "console"
)

// settingFlags are the flags that set a configuration key directly: the
// flag name is the key with "_" as "-". Everything else is set in the file
// or the environment.
var settingFlags = []struct{ key, usage string }{
	{"bind_addr", "main listener address"},
	{"advertised_addr", "address given to clients in metadata"},
	{"node_id", "node name (default: host name)"},
	{"data_dir", "data directory"},
	{"log_level", "log level: debug, info, warn, error"},
}

func flagName(key string) string { return strings.ReplaceAll(key, "_", "-") }

// addSettingFlags declares the setting flags on fs without defaults of
// their own: an unset flag must not shadow the file or the environment.
func addSettingFlags(fs *pflag.FlagSet) {
	for _, f := range settingFlags {
		fs.String(flagName(f.key), "", f.usage+" (key "+f.key+")")
	}
	fs.String(flagLogFormat, "", "log format: json or console (key log_json)")
}

// loaded is the outcome of reading every configuration source.
type loaded struct {
	Config config.Config
	// Ignored names the file keys and FLYMQ_ variables this broker does
	// not implement, to be reported once at start.
	Ignored []string
}

// loadConfig merges, highest first, the flags in fs, FLYMQ_ environment
// variables, the JSON file at path (may be empty) and config.Defaults, then
// normalizes and validates. Errors from every source are joined, so --check
// can print them all at once.
func loadConfig(path string, fs *pflag.FlagSet) (loaded, error) {
	v := viper.New()
	v.SetConfigType("json")
	var out loaded
	if path != "" {
		data, err := os.ReadFile(path)
		if err != nil {
			return out, fmt.Errorf("read config: %w", err)
		}
		if err := v.ReadConfig(bytes.NewReader(data)); err != nil {
			return out, fmt.Errorf("parse config %s: %w", path, err)
		}
		out.Ignored = config.Ignored(v.AllKeys())
	}
	out.Ignored = append(out.Ignored, unknownEnv(os.Environ())...)

	for _, key := range config.Keys() {
		if err := v.BindEnv(append([]string{key}, config.EnvNames(key)...)...); err != nil {
			return out, fmt.Errorf("bind env %s: %w", key, err)
		}
	}
	if fs != nil {
		// Only flags given on the command line count: viper would treat an
		// unset flag's empty default as a value above config.Defaults.
		for _, f := range settingFlags {
			if fl := fs.Lookup(flagName(f.key)); fl != nil && fl.Changed {
				v.Set(f.key, fl.Value.String())
			}
		}
		if fl := fs.Lookup(flagLogFormat); fl != nil && fl.Changed {
			switch fl.Value.String() {
			case logFormatJSON:
				v.Set("log_json", true)
			case logFormatConsole:
				v.Set("log_json", false)
			default:
				return out, fmt.Errorf("--%s must be %s or %s, got %q",
					flagLogFormat, logFormatJSON, logFormatConsole, fl.Value.String())
			}
		}
	}

	cfg := config.Defaults()
	err := v.Unmarshal(&cfg, func(dc *mapstructure.DecoderConfig) {
		dc.TagName = "json"
		// Environment values are strings ("true", "1024"); a value that
		// does not convert ("big") is still an error naming the key.
		dc.WeaklyTypedInput = true
	})
	if err != nil {
		err = fmt.Errorf("decode config: %w", err)
	}
	cfg.Normalize()
	out.Config = cfg
	return out, errors.Join(err, cfg.Validate())
}

// unknownEnv lists FLYMQ_ variables that name no setting: most often a
// typo that would otherwise be silently ignored. Only names are returned.
func unknownEnv(environ []string) []string {
	known := map[string]bool{
		envKey: true, envKeyFile: true, envPreviousKeys: true, envPreviousKeysFile: true,
		// flymq-cli's own variables, often exported in the same shell.
		"FLYMQ_ADDR": true, "FLYMQ_USERNAME": true, "FLYMQ_PASSWORD": true,
		"FLYMQ_NEW_PASSWORD": true, "FLYMQ_OLD_PASSWORD": true,
	}
	for _, k := range config.Keys() {
		for _, n := range config.EnvNames(k) {
			known[n] = true
		}
	}
	var out []string
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, config.EnvPrefix) && !known[name] {
			out = append(out, "env "+name)
		}
	}
	slices.Sort(out)
	return out
}
