package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strings"

	"golang.org/x/term"
)

// readPassword reads a password: from a terminal without echoing it, or
// else as one line of stdin, so scripts can pipe it in. Keep passwords out
// of argv and shell history: pipe them in, or type them at the prompt.
func readPassword(stdin io.Reader, stderr io.Writer) (string, error) {
	return readSecret(stdin, stderr, "password")
}

// readSecret reads what prompt names as readPassword reads a password.
func readSecret(stdin io.Reader, stderr io.Writer, prompt string) (string, error) {
	fmt.Fprint(stderr, prompt+": ")
	if f, ok := stdin.(interface{ Fd() uintptr }); ok && term.IsTerminal(int(f.Fd())) {
		pw, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(stderr) // the Enter that ended it was not echoed either
		if err != nil {
			return "", fmt.Errorf("read %s: %w", prompt, err)
		}
		return string(pw), nil
	}
	line, err := bufio.NewReader(stdin).ReadString('\n')
	if err != nil && !(errors.Is(err, io.EOF) && line != "") {
		return "", fmt.Errorf("no %s on standard input", prompt)
	}
	return strings.TrimRight(line, "\r\n"), nil
}
