package main

import (
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/flymq/flymq/pkg/client"
)

// auditFlags are the filter flags shared by audit query and export.
type auditFlags struct {
	types                          []string
	user, resource, result, search string
	since                          time.Duration
	start, end                     string
}

func (f *auditFlags) register(fs *pflag.FlagSet) {
	fs.StringSliceVar(&f.types, "type", nil, "event types, any of (e.g. auth.failure,user.create)")
	fs.StringVar(&f.user, "user", "", "user name, exact")
	fs.StringVar(&f.resource, "resource", "", "resource (topic, user name), substring")
	fs.StringVar(&f.result, "result", "", "success, failure or denied")
	fs.StringVar(&f.search, "search", "", "case-insensitive text in action, resource or details")
	fs.DurationVar(&f.since, "since", 0, "only events of the last duration (e.g. 1h); overrides --start")
	fs.StringVar(&f.start, "start", "", "only events at or after this RFC 3339 time")
	fs.StringVar(&f.end, "end", "", "only events at or before this RFC 3339 time")
}

func (f *auditFlags) filter() (client.AuditFilter, error) {
	q := client.AuditFilter{EventTypes: f.types, User: f.user, Resource: f.resource, Result: f.result,
		Search: f.search}
	for _, t := range []struct {
		name, v string
		dst     *time.Time
	}{{"start", f.start, &q.Start}, {"end", f.end, &q.End}} {
		if t.v == "" {
			continue
		}
		v, err := time.Parse(time.RFC3339, t.v)
		if err != nil {
			return q, usagef("--%s: want an RFC 3339 time such as 2026-01-02T15:04:05Z, got %q", t.name, t.v)
		}
		*t.dst = v
	}
	if f.since < 0 {
		return q, usagef("--since must be positive")
	}
	if f.since > 0 {
		q.Start = time.Now().Add(-f.since)
	}
	return q, nil
}

// jsonAuditEvent is an audit event in JSON output.
type jsonAuditEvent struct {
	ID        string            `json:"id"`
	Timestamp string            `json:"timestamp"`
	Type      string            `json:"type"`
	User      string            `json:"user"`
	ClientIP  string            `json:"client_ip"`
	Resource  string            `json:"resource"`
	Action    string            `json:"action"`
	Result    string            `json:"result"`
	NodeID    string            `json:"node_id"`
	Details   map[string]string `json:"details"`
}

func eventTime(ms int64) string {
	return time.UnixMilli(ms).UTC().Format("2006-01-02T15:04:05.000Z07:00")
}

func (a *app) auditCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "Query and export the audit trail (admin only)",
		Args:  cobra.ArbitraryArgs,
		RunE:  groupRunE,
	}

	var (
		qf            auditFlags
		limit, offset int
	)
	query := &cobra.Command{
		Use:   "query [filters]",
		Short: "Show audit events, newest first",
		Args:  cobra.NoArgs,
		RunE: runE(func(cmd *cobra.Command, _ []string) error {
			f, err := qf.filter()
			if err != nil {
				return err
			}
			f.Limit, f.Offset = limit, offset
			return a.withClient(cmd, func(c *client.Client) error {
				res, err := c.AuditQuery(f)
				if err != nil {
					return err
				}
				if a.jsonOut {
					out := []jsonAuditEvent{}
					for _, e := range res.Events {
						je := jsonAuditEvent{ID: e.ID, Timestamp: eventTime(e.Timestamp), Type: e.Type, User: e.User,
							ClientIP: e.ClientIP, Resource: e.Resource, Action: e.Action, Result: e.Result,
							NodeID: e.NodeID, Details: map[string]string{}}
						for _, d := range e.Details {
							je.Details[d.Key] = d.Value
						}
						out = append(out, je)
					}
					return a.printJSON(map[string]any{"events": out, "total_count": res.TotalCount, "has_more": res.HasMore})
				}
				for _, e := range res.Events {
					var details []string
					for _, d := range e.Details {
						details = append(details, d.Key+"="+d.Value)
					}
					a.printf("%s\t%s\tuser=%s\tip=%s\tresource=%s\taction=%s\tresult=%s\t%s\n",
						eventTime(e.Timestamp), e.Type, e.User, e.ClientIP, e.Resource, e.Action, e.Result,
						strings.Join(details, " "))
				}
				more := ""
				if res.HasMore {
					more = " (more: use --offset)"
				}
				a.printf("%d of %d events%s\n", len(res.Events), res.TotalCount, more)
				return nil
			})
		}),
	}
	qf.register(query.Flags())
	query.Flags().IntVar(&limit, "limit", 100, "events per page")
	query.Flags().IntVar(&offset, "offset", 0, "events to skip")

	var (
		ef             auditFlags
		format, output string
	)
	export := &cobra.Command{
		Use:   "export [filters] [--format json|csv] [--output FILE]",
		Short: "Export every matching audit event as JSON or CSV",
		Args:  cobra.NoArgs,
		RunE: runE(func(cmd *cobra.Command, _ []string) error {
			if format != "json" && format != "csv" {
				return usagef("--format must be json or csv, not %q", format)
			}
			f, err := ef.filter()
			if err != nil {
				return err
			}
			return a.withClient(cmd, func(c *client.Client) error {
				doc, err := c.AuditExport(f, format)
				if err != nil {
					return err
				}
				if output != "" {
					// The trail names users and peers: keep the file private.
					if err := os.WriteFile(output, doc, 0o600); err != nil {
						return fmt.Errorf("write export: %w", err)
					}
					return nil
				}
				if _, err := a.out.Write(doc); err != nil {
					return fmt.Errorf("write output: %w", err)
				}
				if len(doc) > 0 && doc[len(doc)-1] != '\n' {
					a.printf("\n")
				}
				return nil
			})
		}),
	}
	ef.register(export.Flags())
	export.Flags().StringVar(&format, "format", "json", "json or csv")
	export.Flags().StringVarP(&output, "output", "o", "", "write to FILE (mode 0600) instead of stdout")

	cmd.AddCommand(query, export)
	return cmd
}
