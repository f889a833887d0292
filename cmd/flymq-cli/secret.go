package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/term"
)

// Environment variables for the passwords that users add / users passwd
// set. They are separate from FLYMQ_PASSWORD, which logs the CLI in.
const (
	envNewPassword = "FLYMQ_NEW_PASSWORD"
	envOldPassword = "FLYMQ_OLD_PASSWORD"
)

// secretSource reads passwords for one command: from a flag, else the
// environment, else standard input — one line per password, in the order
// asked, with the echo off and a prompt on stderr when stdin is a
// terminal. A password never appears in a flag default, in output or in
// an error text.
type secretSource struct {
	a  *app
	br *bufio.Reader
}

func (a *app) secrets() *secretSource { return &secretSource{a: a} }

// get returns the value of flag (when given), env (when set) or the next
// line of stdin; what names the password in the prompt and in errors.
func (s *secretSource) get(cmd *cobra.Command, flag, env, what string) (string, error) {
	if f := cmd.Flags().Lookup(flag); f != nil && f.Changed {
		if f.Value.String() == "" {
			return "", usagef("--%s is empty", flag)
		}
		return f.Value.String(), nil
	}
	if v := s.a.getenv(env); v != "" {
		return v, nil
	}
	if f, ok := s.a.in.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fmt.Fprintf(s.a.err, "%s: ", what)
		b, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(s.a.err)
		if err != nil {
			return "", fmt.Errorf("read %s: %w", what, err)
		}
		if len(b) == 0 {
			return "", usagef("empty %s", what)
		}
		return string(b), nil
	}
	if s.br == nil {
		s.br = bufio.NewReader(s.a.in)
	}
	line, err := s.br.ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("read %s from stdin: %w", what, err)
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return "", usagef("no %s: give --%s, set %s or write it on stdin", what, flag, env)
	}
	return line, nil
}
