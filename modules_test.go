package fiberauth_test

import (
	"encoding/json"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// workspaceModules are the repository's modules besides fiberauth itself
// (go.work): the example app, whose browser test needs chromedp, and the
// benchmarks against jwtware. They are modules of their own so that
// neither chromedp nor jwtware is a requirement of fiberauth's users; but
// `go test ./...` stops at a module's boundary, so this test runs theirs.
var workspaceModules = []string{"example", "bench"}

// TestWorkspaceModules runs the tests of the other modules with the flags
// of this run that matter (-race, -short), and reports their skips. The go
// command caches this test's result like any other: it has read every
// file of those modules, so a change to one runs it again.
func TestWorkspaceModules(t *testing.T) {
	t.Parallel() // beside this package's other tests: the browser waits a lot
	if _, err := os.Stat("go.work"); err != nil {
		t.Skipf("no go.work (GOWORK=off, or fiberauth used as a dependency): the example and bench modules are not tested from here")
	}
	args := []string{"test", "-json"}
	if raceEnabled {
		args = append(args, "-race")
	}
	if testing.Short() {
		args = append(args, "-short")
	}
	for _, dir := range workspaceModules {
		readTree(t, dir)
		args = append(args, "./"+dir+"/...")
	}
	readTree(t, "interop") // the example's interop test drives a client there
	// And what decides which of their tests run (PostgreSQL; Chromium,
	// Node, curl and jq found on PATH), so that a change to it is not
	// answered from the cache either.
	for _, v := range []string{"FIBERAUTH_TEST_POSTGRES_DSN", "PATH", "CI"} {
		_ = os.Getenv(v)
	}
	cmd := exec.Command("go", args...)
	cmd.Env = append(os.Environ(), "GOFLAGS=") // flags meant for this run only
	out, runErr := cmd.Output()
	// Say what failed or was skipped, and why, as `go test` would for a
	// package of this module.
	type event struct{ Action, Package, Test, Output string }
	said := map[string][]string{}
	var other []string // build errors and the like
	for _, line := range strings.Split(string(out), "\n") {
		var e event
		if json.Unmarshal([]byte(line), &e) != nil {
			if strings.TrimSpace(line) != "" {
				other = append(other, line)
			}
			continue
		}
		key := e.Package + " " + e.Test
		switch e.Action {
		case "output":
			if o := strings.TrimRight(e.Output, "\n"); !strings.HasPrefix(o, "=== ") && !strings.HasPrefix(o, "--- ") {
				said[key] = append(said[key], o)
			}
		case "skip":
			if e.Test != "" {
				t.Logf("skipped %s: %s", key, strings.TrimSpace(strings.Join(said[key], " ")))
			}
		case "build-output":
			other = append(other, strings.TrimRight(e.Output, "\n"))
		case "fail":
			t.Errorf("failed %s:\n%s", key, strings.Join(said[key], "\n"))
		}
	}
	if runErr != nil {
		var stderr []byte
		if ee, ok := runErr.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("go %s: %v\n%s\n%s", strings.Join(args, " "), runErr, strings.Join(other, "\n"), stderr)
	}
}

// readTree reads every file under dir (but node_modules), so that the go
// command counts them among this test's inputs.
func readTree(t *testing.T, dir string) {
	t.Helper()
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if d.Name() == "node_modules" {
				return filepath.SkipDir
			}
			return nil
		}
		_, err = os.ReadFile(path)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}
