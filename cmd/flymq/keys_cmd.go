package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/flymq/flymq/internal/config"
	"github.com/flymq/flymq/internal/crypto"
	"github.com/flymq/flymq/internal/keys"
	"github.com/flymq/flymq/internal/storage"
)

// envResealFailpoint names a re-seal step (keys.Step) at which the process
// kills itself with SIGKILL, the first time a segment reaches it: the
// end-to-end crash tests use it. It deliberately lacks the FLYMQ_ prefix,
// so that it is never mistaken for a setting.
const envResealFailpoint = "FLYMQTEST_RESEAL_FAILPOINT"

// newKeysCmd is `flymq keys`: the key lifecycle on a stopped broker's
// data dir (docs/keys.md).
func newKeysCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "keys",
		Short: "Inspect and re-seal the data dir's encryption keys (see docs/keys.md)",
		Args:  cobra.NoArgs,
	}
	cmd.AddCommand(newKeysStatusCmd(), newKeysResealCmd())
	return cmd
}

// offlineTool is what the keys and migrate commands share: the config,
// a logger on stderr and the keyring from the usual sources.
type offlineTool struct {
	cfg  config.Config
	log  *zap.Logger
	ring *crypto.Keyring
}

// load reads the configuration like the broker does. With needKey false
// a missing key is not an error (the ring is nil).
func loadOfflineTool(cmd *cobra.Command, configPath, level string, needKey bool) (*offlineTool, error) {
	ld, err := loadConfig(configPath, cmd.Flags())
	if err != nil {
		fmt.Fprintln(cmd.ErrOrStderr(), "flymq: invalid configuration:")
		printErrors(cmd.ErrOrStderr(), err)
		return nil, exitError{code: 1}
	}
	log, err := newLogger(level, ld.Config.LogJSON, cmd.ErrOrStderr())
	if err != nil {
		return nil, err
	}
	t := &offlineTool{cfg: ld.Config, log: log}
	src := keySource{getenv: os.Getenv, log: log}
	t.ring, err = src.loadKeyring(ld.Config.Security.EncryptionEnabled, "")
	if errors.Is(err, ErrNoKey) && !needKey {
		return t, nil
	}
	if err != nil {
		return nil, err
	}
	return t, nil
}

func newKeysStatusCmd() *cobra.Command {
	var configPath string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show which key ids seal how many segments and stores, and which are missing",
		Long: "Show the key ids of the keyring (the active one marked), how many segments and\n" +
			"bytes and how many sealed store files each seals in the data dir, and the ids\n" +
			"that seal data but are missing from the ring. Read-only: nothing in the data dir\n" +
			"is created or changed, so it is safe while the broker runs or is stopped.\n" +
			"Exit status 1 if some data cannot be opened with the keys given.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			t, err := loadOfflineTool(cmd, configPath, "warn", false)
			if err != nil {
				return err
			}
			if err := refuseOldDataDir(t.cfg.DataDir); err != nil {
				return err
			}
			st, err := keys.GetStatus(t.cfg.DataDir, t.ring)
			if err != nil {
				return err
			}
			if asJSON {
				err = writeStatusJSON(cmd.OutOrStdout(), st)
			} else {
				err = writeStatusText(cmd.OutOrStdout(), st)
			}
			if err != nil {
				return err
			}
			if len(st.Missing) > 0 || st.KeycheckErr != nil {
				return exitError{code: 1}
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&configPath, "config", "c", "", "JSON configuration file")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON instead of text")
	addSettingFlags(cmd.Flags())
	return cmd
}

// keyState names a row of the status table.
func keyState(u keys.Usage) string {
	switch {
	case u.Active:
		return "active"
	case u.InRing:
		return "previous"
	case u.ID == 0:
		return "unsealed"
	}
	return "MISSING"
}

func writeStatusText(w io.Writer, st *keys.Status) error {
	running := "not running"
	if st.BrokerRunning {
		running = "running (data dir locked; numbers may change while read)"
	}
	fmt.Fprintf(w, "data dir: %s\nbroker:   %s\n", st.DataDir, running)
	if st.Active == 0 {
		fmt.Fprintln(w, "keys:     none given (set FLYMQ_ENCRYPTION_KEY or FLYMQ_ENCRYPTION_KEY_FILE)")
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "KEY ID\tSTATE\tSEGMENTS\tSEGMENT BYTES\tSTORES\tSTORE BYTES\t")
	for _, u := range st.Keys {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%d\t%s\t\n", u.ID, keyState(u), u.Segments,
			humanBytes(u.SegmentBytes), u.Stores, humanBytes(u.StoreBytes))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	var unused, old []string
	for _, u := range st.Keys {
		switch {
		case u.InRing && !u.Active && !u.Used():
			unused = append(unused, u.ID.String())
		case u.InRing && !u.Active:
			old = append(old, u.ID.String())
		}
	}
	if len(st.Missing) > 0 {
		fmt.Fprintf(w, "MISSING: data is sealed under %s, which the keyring lacks: the broker refuses to start "+
			"until these keys are given in FLYMQ_ENCRYPTION_PREVIOUS_KEYS (or _FILE).\n", joinIDs(st.Missing))
	}
	if st.KeycheckErr != nil {
		fmt.Fprintf(w, "KEYCHECK: %v\n", st.KeycheckErr)
	}
	if len(old) > 0 {
		fmt.Fprintf(w, "Previous key(s) %s still seal data: run `flymq keys reseal` (broker stopped) "+
			"to move it under the active key.\n", strings.Join(old, ", "))
	}
	if len(unused) > 0 {
		fmt.Fprintf(w, "Previous key(s) %s seal nothing here and can be dropped from the keyring.\n",
			strings.Join(unused, ", "))
	}
	if len(st.Retired) > 0 {
		fmt.Fprintf(w, "Retired key id(s) in KEYCHECK, sealing nothing: %s.\n", joinIDs(st.Retired))
	}
	for _, p := range st.Problems {
		fmt.Fprintf(w, "problem: %s\n", p)
	}
	return nil
}

func joinIDs(ids []crypto.KeyID) string {
	s := make([]string, len(ids))
	for i, id := range ids {
		s[i] = id.String()
	}
	return strings.Join(s, ", ")
}

// statusJSON is the --json form of keys.Status; key ids are strings of
// 16 hex digits, as everywhere else.
type statusJSON struct {
	DataDir       string        `json:"data_dir"`
	BrokerRunning bool          `json:"broker_running"`
	ActiveKeyID   string        `json:"active_key_id,omitempty"`
	Keys          []keyJSON     `json:"keys"`
	Missing       []string      `json:"missing"`
	Retired       []string      `json:"retired"`
	KeycheckError string        `json:"keycheck_error,omitempty"`
	Problems      []problemJSON `json:"problems"`
}

type keyJSON struct {
	ID    string `json:"id"`
	State string `json:"state"`
	keys.Usage
}

type problemJSON struct {
	Path  string `json:"path"`
	Error string `json:"error"`
}

func writeStatusJSON(w io.Writer, st *keys.Status) error {
	out := statusJSON{DataDir: st.DataDir, BrokerRunning: st.BrokerRunning,
		Keys: []keyJSON{}, Missing: []string{}, Retired: []string{}, Problems: []problemJSON{}}
	if st.Active != 0 {
		out.ActiveKeyID = st.Active.String()
	}
	for _, u := range st.Keys {
		out.Keys = append(out.Keys, keyJSON{ID: u.ID.String(), State: strings.ToLower(keyState(u)), Usage: u})
	}
	for _, id := range st.Missing {
		out.Missing = append(out.Missing, id.String())
	}
	for _, id := range st.Retired {
		out.Retired = append(out.Retired, id.String())
	}
	if st.KeycheckErr != nil {
		out.KeycheckError = st.KeycheckErr.Error()
	}
	for _, p := range st.Problems {
		out.Problems = append(out.Problems, problemJSON{Path: p.Path, Error: p.Err.Error()})
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

func newKeysResealCmd() *cobra.Command {
	var configPath string
	cmd := &cobra.Command{
		Use:   "reseal",
		Short: "Re-seal everything sealed under an older key with the active key (broker stopped)",
		Long: "Rewrite every segment and sealed store file that is not sealed under the active\n" +
			"key, one file at a time and crash-safely, so that the previous keys can be dropped.\n" +
			"Run it with the broker stopped and the same key settings the broker uses: the\n" +
			"active key in FLYMQ_ENCRYPTION_KEY(_FILE), the old ones in\n" +
			"FLYMQ_ENCRYPTION_PREVIOUS_KEYS(_FILE). If it is interrupted, everything stays\n" +
			"readable with the old and new keys together; run it again to finish.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			t, err := loadOfflineTool(cmd, configPath, "info", true)
			if err != nil {
				fmt.Fprintln(cmd.ErrOrStderr(), "flymq: keys reseal:", err)
				return exitError{code: 1}
			}
			defer func() { _ = t.log.Sync() }()
			if t.ring == nil {
				fmt.Fprintln(cmd.ErrOrStderr(), "flymq: keys reseal: encryption is disabled "+
					"(security.encryption_enabled=false); there is no key to re-seal with")
				return exitError{code: 1}
			}
			if err := refuseOldDataDir(t.cfg.DataDir); err != nil {
				return err
			}
			bar := newProgress("reseal", cmd.ErrOrStderr(), t.log)
			opts := keys.Options{DataDir: t.cfg.DataDir, Keyring: t.ring, Logger: t.log,
				Progress: func(p keys.Progress) {
					bar.update(p.Files, p.TotalFiles, "files", p.Bytes, p.TotalBytes, false)
				},
				Failpoint: failpointFromEnv(),
			}
			start := time.Now()
			res, err := keys.Reseal(cmd.Context(), opts)
			if res != nil && bar.drawn {
				bar.update(res.Segments+res.Stores+len(res.Problems), res.Segments+res.Stores+len(res.Problems),
					"files", res.Bytes, res.Bytes, true)
			}
			if errors.Is(err, storage.ErrLocked) {
				fmt.Fprintf(cmd.ErrOrStderr(), "flymq: keys reseal: %v\nStop the broker first: "+
					"re-sealing runs offline.\n", err)
				return exitError{code: 1}
			}
			if res != nil {
				fmt.Fprintf(cmd.OutOrStdout(), "re-sealed %d segment(s) and %d store file(s), %s, "+
					"under key id %s in %s", res.Segments, res.Stores, humanBytes(res.Bytes),
					t.ring.ActiveID(), time.Since(start).Round(time.Millisecond))
				if res.TempsRemoved > 0 {
					fmt.Fprintf(cmd.OutOrStdout(), "; removed %d leftover temporary file(s)", res.TempsRemoved)
				}
				fmt.Fprintln(cmd.OutOrStdout())
				for _, p := range res.Problems {
					fmt.Fprintf(cmd.ErrOrStderr(), "not re-sealed: %s\n", p)
				}
			}
			if err != nil {
				fmt.Fprintln(cmd.ErrOrStderr(), "flymq: keys reseal:", err)
				return exitError{code: 1}
			}
			fmt.Fprintln(cmd.OutOrStdout(), "Nothing is sealed under another key any more; "+
				"`flymq keys status` shows it, and the previous keys can be dropped.")
			return nil
		},
	}
	cmd.Flags().StringVarP(&configPath, "config", "c", "", "JSON configuration file")
	addSettingFlags(cmd.Flags())
	return cmd
}

// failpointFromEnv returns the test hook of envResealFailpoint: a real
// SIGKILL, so that no deferred cleanup runs.
func failpointFromEnv() func(keys.Step, string) bool {
	want := keys.Step(os.Getenv(envResealFailpoint))
	if want == "" {
		return nil
	}
	return func(s keys.Step, _ string) bool {
		if s == want {
			_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
			select {} // the signal is on its way
		}
		return false
	}
}
