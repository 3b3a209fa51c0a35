package main

import (
	"encoding/json"
	"log/slog"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
)

// TestCurlSession runs the curl session of this package's doc comment as
// written, against the example on a free loopback port (in place of
// localhost:3000), one command after another in one directory (the
// session keeps its tokens in files), and checks each answer against the
// one the comment shows: the same JSON when it shows all of it, else the
// same fields. It needs bash, curl and jq, and skips with a message where
// one is missing (.ci/run installs them).
func TestCurlSession(t *testing.T) {
	for _, tool := range []string{"bash", "curl", "jq"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("TestCurlSession needs %s (Debian: apt-get install %s): %v", tool, tool, err)
		}
	}
	steps := curlSession(t)
	if len(steps) < 8 {
		t.Fatalf("found %d commands in the curl session of main.go", len(steps))
	}

	_, started, cancel, done := startRun(t)
	var addr string
	started.Attrs(func(a slog.Attr) bool {
		if a.Key == "addr" {
			addr = a.Value.String()
		}
		return true
	})
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	}()

	dir := t.TempDir()
	for i, st := range steps {
		cmd := exec.Command("bash", "-c", "set -o pipefail; "+strings.ReplaceAll(st.command, "localhost:3000", addr))
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "LC_ALL=C")
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("step %d: %s\n%v: %s", i+1, st.command, err, out)
		}
		st.check(t, i+1, strings.TrimSpace(string(out)))
	}
}

// curlStep is one command of the session and the answer it shows.
type curlStep struct {
	command, answer string
}

// curlSession reads the session from main.go's doc comment: its commands
// ("$ " lines, continued by lines ending in a backslash) and the line after
// each, up to the admin's commands.
func curlSession(t *testing.T) []curlStep {
	t.Helper()
	src, err := os.ReadFile("main.go")
	if err != nil {
		t.Fatal(err)
	}
	text := string(src)
	start := strings.Index(text, "// A session with curl")
	end := strings.Index(text, "// With -admin-email")
	if start < 0 || end < start {
		t.Fatal("main.go has no curl session in its doc comment")
	}
	var (
		steps []curlStep
		cmd   []string
	)
	for line := range strings.Lines(text[start:end]) {
		line = strings.TrimPrefix(strings.TrimRight(line, "\n"), "//\t")
		switch {
		case cmd != nil:
			cmd = append(cmd, line)
		case strings.HasPrefix(line, "$ "):
			cmd = []string{strings.TrimPrefix(line, "$ ")}
		case len(steps) > 0 && steps[len(steps)-1].answer == "" && strings.HasPrefix(line, "{"):
			steps[len(steps)-1].answer = line
			continue
		default:
			continue
		}
		if !strings.HasSuffix(line, `\`) {
			steps = append(steps, curlStep{command: strings.Join(cmd, "\n")})
			cmd = nil
		}
	}
	return steps
}

// fieldName is a JSON member name in an answer the comment shows.
var fieldName = regexp.MustCompile(`"([a-z_]+)":`)

// check compares what a step printed with the answer the comment shows.
func (st curlStep) check(t *testing.T, n int, got string) {
	t.Helper()
	var v map[string]any
	if err := json.Unmarshal([]byte(got), &v); err != nil {
		t.Fatalf("step %d: %s\nprinted no JSON object: %q", n, st.command, got)
	}
	if _, failed := v["error"]; failed {
		t.Fatalf("step %d: %s\nanswered an error: %s", n, st.command, got)
	}
	if st.answer == "" {
		t.Fatalf("step %d: %s\nthe comment shows no answer", n, st.command)
	}
	if !strings.Contains(st.answer, "…") {
		var want map[string]any
		if err := json.Unmarshal([]byte(st.answer), &want); err != nil {
			t.Fatalf("step %d: the comment's answer is not JSON: %s", n, st.answer)
		}
		if g, w := canonical(v), canonical(want); g != w {
			t.Fatalf("step %d: %s\nanswered %s, the comment shows %s", n, st.command, g, w)
		}
		return
	}
	for _, m := range fieldName.FindAllStringSubmatch(st.answer, -1) {
		if !strings.Contains(got, `"`+m[1]+`":`) {
			t.Fatalf("step %d: %s\nanswered without %q, which the comment shows: %s", n, st.command, m[1], got)
		}
	}
}

func canonical(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
