package main

import (
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/flymq/flymq/pkg/client"
)

// Flag names of the passwords users add / users passwd set.
const (
	flagNewPassword = "new-password"
	flagOldPassword = "old-password"
)

// jsonUser is a user in JSON output; times are RFC 3339 UTC, empty when
// the broker sent none.
type jsonUser struct {
	Username    string   `json:"username"`
	Roles       []string `json:"roles"`
	Permissions []string `json:"permissions"`
	Enabled     bool     `json:"enabled"`
	CreatedAt   string   `json:"created_at"`
	UpdatedAt   string   `json:"updated_at"`
}

func unixTime(s int64) string {
	if s == 0 {
		return ""
	}
	return time.Unix(s, 0).UTC().Format(time.RFC3339)
}

// nonNil keeps JSON lists as [] rather than null.
func nonNil(l []string) []string {
	if l == nil {
		return []string{}
	}
	return l
}

func toJSONUser(u client.UserInfo) jsonUser {
	return jsonUser{Username: u.Username, Roles: nonNil(u.Roles), Permissions: nonNil(u.Permissions),
		Enabled: u.Enabled, CreatedAt: unixTime(u.CreatedAt), UpdatedAt: unixTime(u.UpdatedAt)}
}

func enabledText(b bool) string {
	if b {
		return "enabled"
	}
	return "disabled"
}

func (a *app) usersCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "users",
		Short: "Manage users (admin only, except passwd for your own account)",
		Args:  cobra.ArbitraryArgs,
		RunE:  groupRunE,
	}

	var addRoles []string
	add := &cobra.Command{
		Use:   "add NAME [--roles r1,r2]",
		Short: "Create a user; the password comes from --new-password, " + envNewPassword + " or stdin",
		Args:  cobra.ExactArgs(1),
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			pw, err := a.secrets().get(cmd, flagNewPassword, envNewPassword, "password for "+args[0])
			if err != nil {
				return err
			}
			return a.withClient(cmd, func(c *client.Client) error {
				if err := c.CreateUser(args[0], pw, addRoles); err != nil {
					return err
				}
				if a.jsonOut {
					return a.printJSON(map[string]any{"username": args[0], "roles": nonNil(addRoles), "created": true})
				}
				a.printf("created user %s (roles: %s)\n", args[0], strings.Join(addRoles, ","))
				return nil
			})
		}),
	}
	add.Flags().StringSliceVar(&addRoles, "roles", nil, "roles: admin, producer, consumer, guest (comma-separated or repeated)")
	add.Flags().String(flagNewPassword, "", "the new user's password (prefer "+envNewPassword+" or stdin)")

	list := &cobra.Command{
		Use:   "list",
		Short: "List users",
		Args:  cobra.NoArgs,
		RunE: runE(func(cmd *cobra.Command, _ []string) error {
			return a.withClient(cmd, func(c *client.Client) error {
				users, err := c.ListUsers()
				if err != nil {
					return err
				}
				if a.jsonOut {
					out := []jsonUser{}
					for _, u := range users {
						out = append(out, toJSONUser(u))
					}
					return a.printJSON(map[string]any{"users": out})
				}
				for _, u := range users {
					a.printf("%s\troles=%s\t%s\n", u.Username, strings.Join(u.Roles, ","), enabledText(u.Enabled))
				}
				return nil
			})
		}),
	}

	get := &cobra.Command{
		Use:   "get NAME",
		Short: "Show a user with its effective permissions",
		Args:  cobra.ExactArgs(1),
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			return a.withClient(cmd, func(c *client.Client) error {
				u, err := c.GetUser(args[0])
				if err != nil {
					return err
				}
				if a.jsonOut {
					return a.printJSON(toJSONUser(u))
				}
				a.printf("username:    %s\nroles:       %s\npermissions: %s\nstatus:      %s\ncreated:     %s\nupdated:     %s\n",
					u.Username, strings.Join(u.Roles, ","), strings.Join(u.Permissions, ","), enabledText(u.Enabled),
					unixTime(u.CreatedAt), unixTime(u.UpdatedAt))
				return nil
			})
		}),
	}

	var (
		updRoles   []string
		updEnabled bool
	)
	update := &cobra.Command{
		Use:   "update NAME [--roles r1,r2] [--enabled=true|false]",
		Short: "Replace a user's roles and/or enable or disable it; what is not given stays",
		Args:  cobra.ExactArgs(1),
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			var enabled *bool
			if cmd.Flags().Changed("enabled") {
				enabled = &updEnabled
			}
			if len(updRoles) == 0 && enabled == nil {
				return usagef("nothing to update: give --roles and/or --enabled")
			}
			return a.withClient(cmd, func(c *client.Client) error {
				if err := c.UpdateUser(args[0], updRoles, enabled); err != nil {
					return err
				}
				if a.jsonOut {
					out := map[string]any{"username": args[0], "updated": true}
					if len(updRoles) > 0 {
						out["roles"] = updRoles
					}
					if enabled != nil {
						out["enabled"] = *enabled
					}
					return a.printJSON(out)
				}
				a.printf("updated user %s", args[0])
				if len(updRoles) > 0 {
					a.printf(" (roles: %s)", strings.Join(updRoles, ","))
				}
				if enabled != nil {
					a.printf(" (%s)", enabledText(*enabled))
				}
				a.printf("\n")
				return nil
			})
		}),
	}
	update.Flags().StringSliceVar(&updRoles, "roles", nil, "new roles, replacing the old ones (assign guest to remove every permission)")
	update.Flags().BoolVar(&updEnabled, "enabled", true, "enable (true) or disable (false) the account")

	del := &cobra.Command{
		Use:   "delete NAME",
		Short: "Delete a user; its open sessions lose access at once",
		Args:  cobra.ExactArgs(1),
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			return a.withClient(cmd, func(c *client.Client) error {
				if err := c.DeleteUser(args[0]); err != nil {
					return err
				}
				if a.jsonOut {
					return a.printJSON(map[string]any{"username": args[0], "deleted": true})
				}
				a.printf("deleted user %s\n", args[0])
				return nil
			})
		}),
	}

	passwd := &cobra.Command{
		Use:   "passwd [NAME]",
		Short: "Change a password (default: your own; an admin may change anyone's)",
		Long: "Change a password. NAME defaults to --username. For your own account the current\n" +
			"password is --old-password, " + envOldPassword + ", the login password, or the first line of stdin.\n" +
			"The new one is --new-password, " + envNewPassword + " or the next line of stdin.",
		Args: cobra.MaximumNArgs(1),
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			name := a.username
			if len(args) == 1 {
				name = args[0]
			}
			if name == "" {
				return usagef("give NAME or --username")
			}
			sec := a.secrets()
			var old string
			if cmd.Flags().Changed(flagOldPassword) || a.getenv(envOldPassword) != "" {
				var err error
				if old, err = sec.get(cmd, flagOldPassword, envOldPassword, "current password"); err != nil {
					return err
				}
			} else if name == a.username {
				// The login password is the current one: AUTH proves it.
				if old = a.loginPassword(); old == "" {
					var err error
					if old, err = sec.get(cmd, flagOldPassword, envOldPassword, "current password"); err != nil {
						return err
					}
				}
			}
			pw, err := sec.get(cmd, flagNewPassword, envNewPassword, "new password")
			if err != nil {
				return err
			}
			return a.withClient(cmd, func(c *client.Client) error {
				if err := c.ChangePassword(name, old, pw); err != nil {
					return err
				}
				if a.jsonOut {
					return a.printJSON(map[string]any{"username": name, "password_changed": true})
				}
				a.printf("changed the password of %s\n", name)
				return nil
			})
		}),
	}
	passwd.Flags().String(flagOldPassword, "", "current password (own account; prefer "+envOldPassword+" or stdin)")
	passwd.Flags().String(flagNewPassword, "", "new password (prefer "+envNewPassword+" or stdin)")

	cmd.AddCommand(add, list, get, update, del, passwd)
	return cmd
}

// loginPassword is the password the CLI authenticates with.
func (a *app) loginPassword() string {
	if a.password != "" {
		return a.password
	}
	return a.getenv("FLYMQ_PASSWORD")
}
