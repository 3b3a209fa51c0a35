package fiberauth_test

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// workspaceModules are the repository's modules besides fiberauth itself
// (go.work): the example app, whose browser test needs chromedp, and the
// benchmarks against jwtware. They are modules of their own so that
// neither chromedp nor jwtware is a requirement of fiberauth's users; but
// `go test ./...` stops at a module's boundary, so this test runs theirs.
var workspaceModules = []string{"example", "bench"}

// forwardedFlags are the flags of this run that the other modules' tests
// get too (-timeout becomes what is left of this test's deadline).
var forwardedFlags = []string{"count", "failfast", "shuffle", "cpu", "short"}

// TestWorkspaceModules runs the tests of the other modules, with -race
// when this binary has it and the flags of forwardedFlags given to this
// run, and logs what they skipped and why (go test -v shows it). The go
// command caches this test's result by the files and environment it read:
// it reads every file of the packages those tests build, and the
// environment variables they look at, so that a change to any of them runs
// it again.
func TestWorkspaceModules(t *testing.T) {
	t.Parallel() // beside this package's other tests: the browser waits a lot
	for _, v := range []string{"GOWORK", "GOFLAGS", "CGO_ENABLED", "PATH", "CI",
		"FIBERAUTH_TEST_POSTGRES_DSN", "CHROMIUM", "FIBERAUTH_SCREENSHOT_DIR"} {
		_ = os.Getenv(v)
	}
	work, err := filepath.Abs("go.work")
	if err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("go", "env", "GOWORK").Output(); err != nil || strings.TrimSpace(string(out)) != work {
		t.Skipf("not in this repository's workspace (GOWORK=off, or fiberauth used as a dependency): the example and bench modules are not tested from here")
	}
	var patterns []string
	for _, dir := range workspaceModules {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err != nil {
			t.Fatalf("go.work is this repository's, but module %s is missing: %v", dir, err)
		}
		patterns = append(patterns, "./"+dir+"/...")
	}
	readInputs(t, patterns)

	ctx := context.Background()
	args := []string{"test", "-json"}
	if deadline, ok := t.Deadline(); ok {
		left := time.Until(deadline) - 10*time.Second // to report a timeout of theirs
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, deadline)
		defer cancel()
		args = append(args, "-timeout", left.Round(time.Second).String())
	}
	if raceEnabled {
		args = append(args, "-race")
	}
	flag.Visit(func(f *flag.Flag) {
		for _, name := range forwardedFlags {
			if f.Name == "test."+name {
				args = append(args, fmt.Sprintf("-%s=%s", name, f.Value))
			}
		}
	})
	args = append(args, patterns...)
	cmd := exec.CommandContext(ctx, "go", args...)
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
		case "build-output":
			other = append(other, strings.TrimRight(e.Output, "\n"))
		case "skip":
			if e.Test != "" {
				t.Logf("skipped %s: %s", key, strings.TrimSpace(strings.Join(said[key], " ")))
			}
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

// readInputs reads what the tests of patterns depend on in this
// repository, so that the go command counts it among this test's inputs:
// every file of the packages they build from the workspace's modules (the
// example builds packages of fiberauth this test binary does not import,
// such as metrics), the modules' go.mod and go.sum files, and the JS
// clients under interop/.
func readInputs(t *testing.T, patterns []string) {
	t.Helper()
	args := append([]string{"list", "-deps", "-test", "-f", "{{if .Module}}{{if .Module.Main}}{{.Dir}}{{end}}{{end}}"}, patterns...)
	out, err := exec.Command("go", args...).Output()
	if err != nil {
		t.Fatalf("go %s: %v", strings.Join(args, " "), err)
	}
	dirs := strings.Fields(string(out))
	for _, dir := range dirs {
		entries, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			if e.Type().IsRegular() {
				if _, err := os.ReadFile(filepath.Join(dir, e.Name())); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	for _, f := range []string{"go.work", "go.work.sum", "go.mod", "go.sum", "example/go.mod", "example/go.sum", "bench/go.mod", "bench/go.sum"} {
		if _, err := os.ReadFile(f); err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
	}
	err = filepath.WalkDir("interop", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && d.Name() == "node_modules" {
			return filepath.SkipDir
		}
		if !d.IsDir() {
			_, err = os.ReadFile(path)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}
