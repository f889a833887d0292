package main

import (
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/flymq/flymq/internal/migrate"
	"github.com/flymq/flymq/internal/storage"
)

// newMigrateCmd is `flymq migrate`: copy an old FlyMQ server's data dir
// into ours, sealed.
func newMigrateCmd() *cobra.Command {
	var configPath, from, userFile, aclFile string
	var dryRun bool
	cmd := &cobra.Command{
		Use:   "migrate --from OLD_DATA_DIR --config FILE",
		Short: "Copy an old FlyMQ server's data dir into this broker's data dir, sealed",
		Long: "Read an old FlyMQ server's data dir (plaintext .store/.index segments,\n" +
			"__consumer_offsets) and the old user and ACL files (auth.user_file and\n" +
			"auth.acl_file of the config, or --users/--acls), and write them into data_dir\n" +
			"sealed with the active key: same topics, partitions, offsets, keys, values and\n" +
			"committed offsets. The old dir is only read. Run it with the broker stopped,\n" +
			"into a new, empty data_dir; if it fails half way, remove that dir and run again.\n" +
			"Records the old server lost in a crash are reported: a torn tail is skipped, a\n" +
			"damaged record followed by intact ones becomes an empty record so that every\n" +
			"later offset stays the same.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if from == "" {
				return errors.New("--from OLD_DATA_DIR is required")
			}
			stderr := cmd.ErrOrStderr()
			if dryRun {
				return migrateDryRun(cmd.OutOrStdout(), from)
			}
			t, err := loadOfflineTool(cmd, configPath, "info", true)
			if err != nil {
				fmt.Fprintln(stderr, "flymq: migrate:", err)
				return exitError{code: 1}
			}
			defer func() { _ = t.log.Sync() }()
			if !cmd.Flags().Changed("users") && t.cfg.Auth.UserFile != "" {
				userFile = t.cfg.Auth.UserFile
			}
			if !cmd.Flags().Changed("acls") && t.cfg.Auth.ACLFile != "" {
				aclFile = t.cfg.Auth.ACLFile
			}
			bar := newProgress("migrate", stderr, t.log)
			start := time.Now()
			res, err := migrate.Migrate(cmd.Context(), migrate.Options{
				From: from, DataDir: t.cfg.DataDir, Keyring: t.ring, SegmentBytes: t.cfg.SegmentBytes,
				UserFile: userFile, ACLFile: aclFile, Logger: t.log,
				Progress: func(p migrate.Progress) {
					bar.update(p.Partitions, p.TotalPartitions, "partitions", p.Bytes, p.TotalBytes,
						p.Partitions == p.TotalPartitions)
				},
			})
			if errors.Is(err, storage.ErrLocked) {
				fmt.Fprintf(stderr, "flymq: migrate: %v\nStop the broker first.\n", err)
				return exitError{code: 1}
			}
			if err != nil {
				fmt.Fprintln(stderr, "flymq: migrate:", err)
				return exitError{code: 1}
			}
			out := cmd.OutOrStdout()
			for _, n := range res.Notes {
				fmt.Fprintln(out, "note:", n)
			}
			fmt.Fprintf(out, "migrated %d topic(s), %d partition(s), %d record(s)", res.Topics,
				res.Partitions, res.Records)
			if res.Placeholders > 0 {
				fmt.Fprintf(out, " (+%d damaged record(s) kept as empty records)", res.Placeholders)
			}
			fmt.Fprintf(out, ", %d consumer group file(s) with %d committed offset(s)", res.Groups, res.Commits)
			if res.Users {
				fmt.Fprintf(out, ", users from %s", userFile)
			}
			if res.ACLs {
				fmt.Fprintf(out, ", ACLs from %s", aclFile)
			}
			sealed := "UNSEALED (encryption is disabled)"
			if t.ring != nil {
				sealed = "sealed under key id " + t.ring.ActiveID().String()
			}
			fmt.Fprintf(out, "\ninto %s, %s, in %s; %s was not modified.\n", t.cfg.DataDir, sealed,
				time.Since(start).Round(time.Millisecond), from)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVarP(&configPath, "config", "c", "", "JSON configuration file of this broker (data_dir is the target)")
	f.StringVar(&from, "from", "", "the old FlyMQ server's data dir (read only)")
	f.StringVar(&userFile, "users", "", "old user file to import (default: auth.user_file)")
	f.StringVar(&aclFile, "acls", "", "old ACL file to import (default: auth.acl_file)")
	f.BoolVar(&dryRun, "dry-run", false, "read the old dir, print what would be migrated, write nothing")
	addSettingFlags(f)
	return cmd
}

// migrateDryRun prints what the old dir holds and what would be skipped.
func migrateDryRun(w io.Writer, from string) error {
	src, err := migrate.ReadOldDir(from)
	if err != nil {
		return err
	}
	var records, damaged uint64
	for _, t := range src.Topics {
		var n uint64
		for _, p := range t.Partitions {
			n += p.Next
			damaged += uint64(len(p.Damaged))
		}
		records += n
		fmt.Fprintf(w, "topic %s: %d partition(s), %d record(s)\n", t.Name, len(t.Partitions), n)
	}
	for _, g := range src.Groups {
		fmt.Fprintf(w, "group %s on %s: %d committed offset(s)\n", g.Group, g.Topic, len(g.Offsets))
	}
	for _, n := range src.Notes {
		fmt.Fprintln(w, "note:", n)
	}
	fmt.Fprintf(w, "%d topic(s), %d record(s) (%d damaged), %s of .store files; nothing written.\n",
		len(src.Topics), records, damaged, humanBytes(src.StoreBytes))
	return nil
}
