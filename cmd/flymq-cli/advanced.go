package main

// Commands for the advanced operations: txn, dlq and schema
// (security-and-advanced.md §§8–11). produce --delay/--ttl live in
// produce.go and call produceTimed below.

import (
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/flymq/flymq/pkg/client"
)

// produceTimed sends one delayed or expiring message.
func (a *app) produceTimed(c *client.Client, topic string, value []byte, delay, ttl time.Duration) error {
	if delay != 0 {
		md, err := c.ProduceDelayed(topic, value, delay)
		if err != nil {
			return err
		}
		if a.jsonOut {
			return a.printJSON(map[string]any{"topic": md.Topic, "scheduled": true, "delay_ms": delay.Milliseconds()})
		}
		a.printf("scheduled for %s in %v\n", md.Topic, delay)
		return nil
	}
	md, err := c.ProduceWithTTL(topic, value, ttl)
	if err != nil {
		return err
	}
	if a.jsonOut {
		return a.printJSON(jsonRecord{md.Topic, md.Partition, md.Offset, md.Timestamp})
	}
	a.printf("produced to %s partition %d offset %d (expires in %v)\n", md.Topic, md.Partition, md.Offset, ttl)
	return nil
}

func (a *app) txnCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "txn",
		Short: "Transactions: messages become visible together at commit",
		Long: "Transactions belong to the user that began them, not to a connection,\n" +
			"so one can be built over several invocations:\n" +
			"  id=$(flymq-cli txn begin); flymq-cli txn produce $id orders m1; flymq-cli txn commit $id\n" +
			"or in one: flymq-cli txn send orders m1 m2 m3",
		Args: cobra.ArbitraryArgs,
		RunE: groupRunE,
	}
	begin := &cobra.Command{
		Use:   "begin",
		Short: "Begin a transaction and print its id",
		Args:  cobra.NoArgs,
		RunE: runE(func(cmd *cobra.Command, _ []string) error {
			return a.withClient(cmd, func(c *client.Client) error {
				tx, err := c.BeginTx()
				if err != nil {
					return err
				}
				if a.jsonOut {
					return a.printJSON(map[string]string{"txn_id": tx.ID})
				}
				a.printf("%s\n", tx.ID)
				return nil
			})
		}),
	}
	produce := &cobra.Command{
		Use:   "produce TXN_ID TOPIC VALUE",
		Short: "Buffer a message in a transaction",
		Args:  cobra.ExactArgs(3),
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			return a.withClient(cmd, func(c *client.Client) error {
				if err := c.Transaction(args[0]).Produce(args[1], []byte(args[2])); err != nil {
					return err
				}
				a.done(map[string]any{"txn_id": args[0], "topic": args[1], "buffered": true},
					"buffered in %s for %s\n", args[0], args[1])
				return nil
			})
		}),
	}
	end := func(name, past string, fn func(*client.Tx) error) *cobra.Command {
		return &cobra.Command{
			Use:   name + " TXN_ID",
			Short: "Transaction " + name,
			Args:  cobra.ExactArgs(1),
			RunE: runE(func(cmd *cobra.Command, args []string) error {
				return a.withClient(cmd, func(c *client.Client) error {
					if err := fn(c.Transaction(args[0])); err != nil {
						return err
					}
					a.done(map[string]any{"txn_id": args[0], past: true}, "%s %s\n", past, args[0])
					return nil
				})
			}),
		}
	}
	send := &cobra.Command{
		Use:   "send TOPIC VALUE...",
		Short: "Produce several messages to TOPIC atomically",
		Args:  cobra.MinimumNArgs(2),
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			return a.withClient(cmd, func(c *client.Client) error {
				tx, err := c.BeginTx()
				if err != nil {
					return err
				}
				for _, v := range args[1:] {
					if err := tx.Produce(args[0], []byte(v)); err != nil {
						_ = tx.Abort()
						return err
					}
				}
				if err := tx.Commit(); err != nil {
					return err
				}
				a.done(map[string]any{"txn_id": tx.ID, "topic": args[0], "messages": len(args) - 1, "committed": true},
					"committed %d messages to %s\n", len(args)-1, args[0])
				return nil
			})
		}),
	}
	cmd.AddCommand(begin, produce, end("commit", "committed", (*client.Tx).Commit),
		end("abort", "aborted", (*client.Tx).Abort), send)
	return cmd
}

// done prints a result: v as JSON, or the formatted text.
func (a *app) done(v any, format string, args ...any) {
	if a.jsonOut {
		_ = a.printJSON(v)
		return
	}
	a.printf(format, args...)
}

func (a *app) dlqCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "dlq",
		Short: "Dead-letter queues: fetch, replay, purge",
		Args:  cobra.ArbitraryArgs,
		RunE:  groupRunE,
	}
	var max int32
	fetch := &cobra.Command{
		Use:   "fetch TOPIC",
		Short: "List the dead letters of TOPIC",
		Args:  cobra.ExactArgs(1),
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			return a.withClient(cmd, func(c *client.Client) error {
				msgs, err := c.FetchDLQ(args[0], max)
				if err != nil {
					return err
				}
				for _, m := range msgs {
					if a.jsonOut {
						if err := a.printJSON(map[string]any{"id": m.ID, "data": text(m.Data),
							"error": m.Error, "retries": m.Retries}); err != nil {
							return err
						}
						continue
					}
					a.printf("%s\t%d\t%s\t%s\n", m.ID, m.Retries, text([]byte(m.Error)), text(m.Data))
				}
				return nil
			})
		}),
	}
	fetch.Flags().Int32Var(&max, "max", 10, "records of the DLQ to examine")
	replay := &cobra.Command{
		Use:   "replay TOPIC ID",
		Short: "Produce a dead letter's payload to its original topic again",
		Args:  cobra.ExactArgs(2),
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			return a.withClient(cmd, func(c *client.Client) error {
				if err := c.ReplayDLQ(args[0], args[1]); err != nil {
					return err
				}
				a.done(map[string]any{"id": args[1], "replayed": true}, "replayed %s\n", args[1])
				return nil
			})
		}),
	}
	reinject := &cobra.Command{
		Use:   "reinject TOPIC OFFSET",
		Short: "Replay the dead letter stored at OFFSET of TOPIC's DLQ",
		Args:  cobra.ExactArgs(2),
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			off, err := strconv.ParseUint(args[1], 10, 64)
			if err != nil {
				return usagef("invalid offset %q", args[1])
			}
			return a.withClient(cmd, func(c *client.Client) error {
				if err := c.ReinjectDLQ(args[0], off); err != nil {
					return err
				}
				a.done(map[string]any{"offset": off, "replayed": true}, "replayed offset %d\n", off)
				return nil
			})
		}),
	}
	purge := &cobra.Command{
		Use:   "purge TOPIC",
		Short: "Delete TOPIC's dead-letter queue (admin)",
		Args:  cobra.ExactArgs(1),
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			return a.withClient(cmd, func(c *client.Client) error {
				if err := c.PurgeDLQ(args[0]); err != nil {
					return err
				}
				a.done(map[string]any{"topic": args[0], "purged": true}, "purged the DLQ of %s\n", args[0])
				return nil
			})
		}),
	}
	cmd.AddCommand(fetch, replay, reinject, purge)
	return cmd
}

func (a *app) schemaCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "schema",
		Short: "Schema registry: register, get, list, validate, produce, delete",
		Args:  cobra.ArbitraryArgs,
		RunE:  groupRunE,
	}
	var typ, file string
	register := &cobra.Command{
		Use:   "register NAME [DEFINITION]",
		Short: "Register a new version of a schema (DEFINITION or --file)",
		Args:  cobra.RangeArgs(1, 2),
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			var def []byte
			switch {
			case len(args) == 2 && file == "":
				def = []byte(args[1])
			case len(args) == 1 && file != "":
				var err error
				if def, err = os.ReadFile(file); err != nil {
					return fmt.Errorf("read schema file: %w", err)
				}
			default:
				return usagef("give the definition either as DEFINITION or with --file")
			}
			return a.withClient(cmd, func(c *client.Client) error {
				v, err := c.RegisterSchema(args[0], typ, def)
				if err != nil {
					return err
				}
				a.done(map[string]any{"name": args[0], "type": typ, "version": v}, "registered %s version %d\n", args[0], v)
				return nil
			})
		}),
	}
	register.Flags().StringVar(&typ, "type", client.SchemaJSON, "json, avro or protobuf")
	register.Flags().StringVar(&file, "file", "", "read the definition from this file")
	var version uint32
	get := &cobra.Command{
		Use:   "get NAME",
		Short: "Print a schema version (default: the latest)",
		Args:  cobra.ExactArgs(1),
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			return a.withClient(cmd, func(c *client.Client) error {
				d, err := c.GetSchema(args[0], version)
				if err != nil {
					return err
				}
				if a.jsonOut {
					return a.printJSON(map[string]any{"id": d.ID, "name": d.Name, "type": d.Type, "version": d.Version,
						"definition": string(d.Definition), "compatibility": d.Compatibility})
				}
				a.printf("%s\t%s\t%s\n%s\n", d.ID, d.Type, d.Compatibility, d.Definition)
				return nil
			})
		}),
	}
	get.Flags().Uint32Var(&version, "version", 0, "version (0: latest)")
	list := &cobra.Command{
		Use:   "list [NAME]",
		Short: "List schema versions",
		Args:  cobra.MaximumNArgs(1),
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			filter := ""
			if len(args) == 1 {
				filter = args[0]
			}
			return a.withClient(cmd, func(c *client.Client) error {
				l, err := c.ListSchemas(filter)
				if err != nil {
					return err
				}
				for _, s := range l {
					a.done(map[string]any{"id": s.ID, "type": s.Type, "version": s.Version}, "%s\t%s\n", s.ID, s.Type)
				}
				return nil
			})
		}),
	}
	validate := &cobra.Command{
		Use:   "validate NAME MESSAGE",
		Short: "Check MESSAGE against the latest version of NAME (exit 1 when invalid)",
		Args:  cobra.ExactArgs(2),
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			return a.withClient(cmd, func(c *client.Client) error {
				ok, errs, err := c.ValidateSchema(args[0], []byte(args[1]))
				if err != nil {
					return err
				}
				if a.jsonOut {
					if err := a.printJSON(map[string]any{"valid": ok, "errors": errs}); err != nil {
						return err
					}
				} else if ok {
					a.printf("valid\n")
				}
				if !ok {
					for _, e := range errs {
						if !a.jsonOut {
							a.printf("invalid: %s\n", e)
						}
					}
					return fmt.Errorf("message does not match schema %s", args[0])
				}
				return nil
			})
		}),
	}
	produce := &cobra.Command{
		Use:   "produce TOPIC SCHEMA VALUE",
		Short: "Produce VALUE to TOPIC after validating it against SCHEMA",
		Args:  cobra.ExactArgs(3),
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			return a.withClient(cmd, func(c *client.Client) error {
				md, err := c.ProduceWithSchema(args[0], args[1], []byte(args[2]))
				if err != nil {
					return err
				}
				if a.jsonOut {
					return a.printJSON(jsonRecord{md.Topic, md.Partition, md.Offset, md.Timestamp})
				}
				a.printf("produced to %s partition %d offset %d\n", md.Topic, md.Partition, md.Offset)
				return nil
			})
		}),
	}
	var delVersion uint32
	del := &cobra.Command{
		Use:   "delete NAME",
		Short: "Delete one version (--version) or every version of a schema (admin)",
		Args:  cobra.ExactArgs(1),
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			return a.withClient(cmd, func(c *client.Client) error {
				if err := c.DeleteSchema(args[0], delVersion); err != nil {
					return err
				}
				a.done(map[string]any{"name": args[0], "version": delVersion, "deleted": true}, "deleted %s\n", args[0])
				return nil
			})
		}),
	}
	del.Flags().Uint32Var(&delVersion, "version", 0, "version (0: every version)")
	cmd.AddCommand(register, get, list, validate, produce, del)
	return cmd
}

// checkTimed refuses flag combinations the delayed and TTL ops cannot
// carry: they have no key or partition field, and not both at once.
func checkTimed(cmd *cobra.Command, delay, ttl time.Duration) error {
	if delay == 0 && ttl == 0 {
		return nil
	}
	if delay != 0 && ttl != 0 {
		return usagef("--delay and --ttl cannot be combined")
	}
	if ttl < 0 {
		return usagef("--ttl must be positive")
	}
	if cmd.Flags().Changed("key") || cmd.Flags().Changed("partition") {
		return usagef("--delay and --ttl messages have no key or partition")
	}
	return nil
}
