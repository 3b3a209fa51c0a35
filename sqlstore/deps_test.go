package sqlstore_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestDriversLinkAlone checks what a program links: importing one driver's
// package brings that driver and not the other's, and fiberauth and
// sqlstore themselves bring neither. (It asks the go command, as a user's
// build would.)
func TestDriversLinkAlone(t *testing.T) {
	t.Parallel()
	const (
		pgx    = "github.com/jackc/pgx/"
		sqlite = "modernc.org/sqlite"
	)
	// The go command caches this test's result by what it read: the size
	// apps are in no package the test imports, so read them.
	for _, app := range []string{"sqlite", "postgres"} {
		if _, err := os.ReadFile(filepath.Join("..", "internal", "sizeapp", app, "main.go")); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct {
		pkg       string
		wants     []string
		forbidden []string
	}{
		{"github.com/fiberauth/fiberauth", nil, []string{pgx, sqlite}},
		{"github.com/fiberauth/fiberauth/sqlstore", nil, []string{pgx, sqlite}},
		{"github.com/fiberauth/fiberauth/sqlstore/sqlite", []string{sqlite}, []string{pgx}},
		{"github.com/fiberauth/fiberauth/sqlstore/postgres", []string{pgx}, []string{sqlite}},
		// The apps whose sizes bench/sizes.sh reports.
		{"github.com/fiberauth/fiberauth/internal/sizeapp/sqlite", []string{sqlite}, []string{pgx}},
		{"github.com/fiberauth/fiberauth/internal/sizeapp/postgres", []string{pgx}, []string{sqlite}},
	} {
		out, err := exec.Command("go", "list", "-deps", c.pkg).CombinedOutput()
		if err != nil {
			t.Fatalf("go list -deps %s: %v\n%s", c.pkg, err, out)
		}
		deps := strings.Fields(string(out))
		has := func(prefix string) bool {
			for _, d := range deps {
				if strings.HasPrefix(d, prefix) {
					return true
				}
			}
			return false
		}
		for _, p := range c.wants {
			if !has(p) {
				t.Errorf("%s does not link %s", c.pkg, p)
			}
		}
		for _, p := range c.forbidden {
			if has(p) {
				t.Errorf("%s links %s", c.pkg, p)
			}
		}
	}
}
