package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"iter"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/pquerna/otp/totp"

	"github.com/fiberauth/fiberauth"
)

// chromium finds Debian's Chromium; .ci/run installs it.
func chromium(t *testing.T) string {
	t.Helper()
	for _, p := range []string{os.Getenv("CHROMIUM"), "/usr/bin/chromium", "/usr/bin/chromium-browser"} {
		if p == "" {
			continue
		}
		if path, err := exec.LookPath(p); err == nil {
			return path
		}
	}
	t.Skip("Chromium is not installed (Debian package chromium; .ci/run installs it): skipping the browser test")
	return ""
}

// startServer serves the example on a free loopback port and returns its
// base URL. "localhost" is a secure context: Chromium keeps Secure cookies
// on it over plain HTTP.
func startServer(t *testing.T, opts options) string {
	t.Helper()
	base, _ := startServerAuth(t, opts)
	return base
}

// startServerAuth is startServer that also gives the server's Auth, to wait
// for what it does after answering.
func startServerAuth(t *testing.T, opts options) (string, *fiberauth.Auth) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://localhost:" + strings.TrimPrefix(ln.Addr().String(), "127.0.0.1:")
	if opts.origin == "" {
		opts.origin = base // as parseOptions makes it for a loopback address
	}
	srv, err := newServer(context.Background(), opts, slog.New(slog.DiscardHandler))
	if err != nil {
		_ = ln.Close()
		t.Fatal(err)
	}
	go func() { _ = srv.app.Listener(ln) }()
	t.Cleanup(func() { _ = srv.app.Shutdown(); _ = srv.close() })
	return base, srv.auth
}

// TestBrowserSession drives the example's web app in headless Chromium: sign
// up, confirm with the code from the dev outbox, sign in, see the profile,
// reload and stay signed in, find the refresh token out of the page's reach,
// end another session, sign out; then, on a server without the dev outbox,
// sign up and be told to check your email. The page writes no error to the
// console on the way.
func TestBrowserSession(t *testing.T) {
	exe := chromium(t)
	base := startServer(t, options{store: "memory", dev: true})

	b := openBrowser(t, exe)
	do, text, eval, step, consoleErrors := b.do, b.text, b.eval, b.step, b.consoleErrors

	const email, password = "ada@example.com", "correct horse battery"
	do("open the page and sign up",
		chromedp.Navigate(base+"/"),
		chromedp.WaitVisible(chromedp.ID("view-login")),
		chromedp.Click(chromedp.CSS(`a[data-view="signup"]`)),
		chromedp.WaitVisible(chromedp.ID("signup-email")),
		chromedp.SendKeys(chromedp.ID("signup-email"), email),
		chromedp.SendKeys(chromedp.ID("signup-password"), password),
		chromedp.Click(chromedp.ID("signup-btn")),
		chromedp.WaitVisible(chromedp.ID("view-confirm")),
	)
	if href, _ := eval(`document.getElementById("outbox-link").href`).(string); !strings.Contains(href, "/dev/outbox?to=ada%40example.com") {
		t.Fatalf("the outbox hint links to %q", href)
	}
	code := outboxCode(t, base, email)

	do("confirm and sign in",
		chromedp.SendKeys(chromedp.ID("confirm-code"), code),
		chromedp.Click(chromedp.ID("confirm-btn")),
		chromedp.WaitVisible(chromedp.ID("view-login")),
		chromedp.SendKeys(chromedp.ID("login-password"), password),
		chromedp.Click(chromedp.ID("login-btn")),
		chromedp.WaitVisible(chromedp.ID("view-home")),
		chromedp.WaitVisible(chromedp.CSS("#sessions li")),
	)
	if got := text("profile-email"); got != email {
		t.Fatalf("profile shows %q", got)
	}

	saveScreenshot(t, step, "signed-in.png")

	do("reload", chromedp.Reload(), chromedp.WaitVisible(chromedp.ID("view-home")))
	if got := text("profile-email"); got != email {
		t.Fatalf("after a reload the profile shows %q", got)
	}

	// The browser holds the refresh cookie, but the page cannot read it.
	ctx, cancelCookies := step()
	jar, err := chromedp.Call(ctx, network.GetCookies, network.GetCookiesParams{URLs: []string{base + "/"}})
	cancelCookies()
	if err != nil {
		t.Fatalf("read the browser's cookies: %v", err)
	}
	var refresh *network.Cookie
	for _, c := range jar.Cookies {
		if c.Name == "__Host-refresh" {
			refresh = c
		}
	}
	if refresh == nil || refresh.Value == "" || !refresh.HTTPOnly || !refresh.Secure || refresh.SameSite != network.CookieSameSiteStrict {
		t.Fatalf("refresh cookie in the browser: %+v", refresh)
	}
	if page, _ := eval(`document.cookie`).(string); strings.Contains(page, "refresh") || strings.Contains(page, refresh.Value) {
		t.Fatalf("document.cookie shows the refresh token: %q", page)
	}

	// Another session (another device) shows up in the list; end it here.
	other := apiLogin(t, base, email, password)
	row := `#sessions li[data-id="` + other.sid + `"]`
	do("end the other session",
		chromedp.Click(chromedp.ID("sessions-reload")),
		chromedp.WaitVisible(chromedp.CSS(row+" button.end")),
		chromedp.Click(chromedp.CSS(row+" button.end")),
		chromedp.WaitNotPresent(chromedp.CSS(row)),
	)
	if status := profileStatus(t, base, other.access); status != 401 {
		t.Fatalf("the ended session's token still gets %d", status)
	}

	// Sessions are named by device; "sign out all other sessions" ends
	// every one but this.
	second, third := apiLogin(t, base, email, password, iPhoneSafari), apiLogin(t, base, email, password, "curl/8.5.0")
	do("list three sessions",
		chromedp.Click(chromedp.ID("sessions-reload")),
		chromedp.WaitVisible(chromedp.CSS(`#sessions li[data-id="`+third.sid+`"]`)),
		chromedp.WaitVisible(chromedp.ID("sign-out-others")),
	)
	if here, _ := eval(`document.querySelector("#sessions li:has(.current) .device").textContent`).(string); !strings.HasPrefix(here, "Chrome on Linux") {
		t.Fatalf("this device is listed as %q", here)
	}
	for sid, want := range map[string]string{second.sid: "Safari on iPhone", third.sid: "curl"} {
		if there, _ := eval(`document.querySelector('#sessions li[data-id="` + sid + `"] .device').textContent`).(string); !strings.HasPrefix(there, want+" · ") {
			t.Fatalf("a session is listed as %q, want %q", there, want)
		}
	}
	saveScreenshot(t, step, "sessions.png")
	do("sign out the other sessions",
		chromedp.Click(chromedp.ID("sign-out-others")),
		chromedp.WaitNotPresent(chromedp.CSS(`#sessions li[data-id="`+second.sid+`"]`)),
		chromedp.WaitNotPresent(chromedp.CSS(`#sessions li[data-id="`+third.sid+`"]`)),
		chromedp.WaitNotVisible(chromedp.ID("sign-out-others")),
	)
	for _, p := range []apiSession{second, third} {
		if status := profileStatus(t, base, p.access); status != 401 {
			t.Fatalf("a signed-out session's token still gets %d", status)
		}
	}

	// Two-factor authentication: set up from the QR code the page shows,
	// turned on with a code from the authenticator, the recovery codes
	// shown once.
	do("set up two-factor authentication",
		chromedp.SendKeys(chromedp.ID("mfa-setup-password"), password),
		chromedp.Click(chromedp.ID("mfa-setup-btn")),
		chromedp.WaitVisible(chromedp.ID("mfa-enable-form")),
		chromedp.Poll[chromedp.Void](`document.getElementById("mfa-qr").complete && document.getElementById("mfa-qr").naturalWidth === 240`),
	)
	secret := text("mfa-secret")
	if len(secret) < 16 {
		t.Fatalf("the page shows the key %q", secret)
	}
	saveScreenshot(t, step, "2fa-setup.png")
	code, err = totp.GenerateCode(secret, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	do("turn it on",
		chromedp.SendKeys(chromedp.ID("mfa-enable-code"), code),
		chromedp.Click(chromedp.ID("mfa-enable-btn")),
		chromedp.WaitVisible(chromedp.CSS("#mfa-recovery-codes li")),
	)
	recovery, _ := eval(`Array.from(document.querySelectorAll("#mfa-recovery-codes li")).map((li) => li.textContent)`).([]any)
	if len(recovery) != 10 {
		t.Fatalf("the page shows %d recovery codes", len(recovery))
	}
	saveScreenshot(t, step, "2fa-recovery-codes.png")
	do("the codes are saved",
		chromedp.Click(chromedp.ID("mfa-recovery-done")),
		chromedp.WaitVisible(chromedp.ID("mfa-on")),
		chromedp.WaitNotVisible(chromedp.ID("mfa-setup-form")),
	)
	if n, _ := eval(`document.querySelectorAll("#mfa-recovery-codes li").length`).(float64); n != 0 {
		t.Fatalf("the recovery codes are still in the page: %v", n)
	}

	do("sign out",
		chromedp.Click(chromedp.ID("logout-btn")),
		chromedp.WaitVisible(chromedp.ID("view-login")),
		chromedp.Reload(),
		chromedp.WaitVisible(chromedp.ID("view-login")),
	)
	if hidden, _ := eval(`document.getElementById("view-home").hidden`).(bool); !hidden {
		t.Fatal("after sign-out and a reload the profile is showing")
	}
	if status := refreshStatus(t, base, refresh.Value); status != 401 {
		t.Fatalf("the signed-out cookie's refresh token still gets %d", status)
	}
	if errs := consoleErrors(); len(errs) > 0 {
		t.Fatalf("console errors in a session with the dev outbox:\n%s", strings.Join(errs, "\n"))
	}

	// Errors reach the person in words.
	do("sign in with a wrong password",
		chromedp.SendKeys(chromedp.ID("login-email"), email),
		chromedp.SendKeys(chromedp.ID("login-password"), "not my password"),
		chromedp.Click(chromedp.ID("login-btn")),
		chromedp.WaitVisible(chromedp.ID("message")),
	)
	if got := text("message"); got != "Wrong email, username or password." {
		t.Fatalf("the page says %q after a wrong password", got)
	}
	consoleErrors() // the 401 of the wrong password

	// With 2FA on, the password leads to the second step; a recovery code
	// passes it.
	do("sign in with the second factor",
		chromedp.Evaluate[chromedp.Void](`document.getElementById("login-password").value = ""; document.getElementById("message").hidden = true`),
		chromedp.SendKeys(chromedp.ID("login-password"), password),
		chromedp.Click(chromedp.ID("login-btn")),
		chromedp.WaitVisible(chromedp.ID("view-mfa")),
		chromedp.SendKeys(chromedp.ID("mfa-code"), recovery[0].(string)),
		chromedp.Click(chromedp.ID("mfa-btn")),
		chromedp.WaitVisible(chromedp.ID("view-home")),
		chromedp.WaitVisible(chromedp.ID("mfa-on")),
	)

	// Without the dev outbox the page never asks for it, and tells the
	// person to check their email.
	noDev, noDevAuth := startServerAuth(t, options{store: "memory"})
	do("sign up without the dev outbox",
		chromedp.Navigate(noDev+"/"),
		chromedp.WaitVisible(chromedp.ID("view-login")),
		chromedp.Click(chromedp.CSS(`a[data-view="signup"]`)),
		chromedp.WaitVisible(chromedp.ID("signup-email")),
		chromedp.SendKeys(chromedp.ID("signup-email"), email),
		chromedp.SendKeys(chromedp.ID("signup-password"), password),
		chromedp.Click(chromedp.ID("signup-btn")),
		chromedp.WaitVisible(chromedp.ID("view-confirm")),
		chromedp.WaitVisible(chromedp.ID("mail-hint")),
	)
	if hidden, _ := eval(`document.getElementById("outbox-hint").hidden`).(bool); !hidden {
		t.Fatal("without the dev outbox the page points to it")
	}
	if got := text("mail-hint"); !strings.Contains(got, "check your inbox") {
		t.Fatalf("the confirm view says %q", got)
	}
	if got := text("message"); got != "Check your email: enter the confirmation code we sent to this address." {
		t.Fatalf("after signing up the page says %q", got)
	}
	if errs := consoleErrors(); len(errs) > 0 {
		t.Fatalf("console errors without the dev outbox:\n%s", strings.Join(errs, "\n"))
	}
	if err := noDevAuth.Flush(context.Background()); err != nil { // the account exists once the signup's work is done
		t.Fatal(err)
	}
	do("sign in before confirming",
		chromedp.Click(chromedp.CSS(`#view-confirm a[data-view="login"]`)),
		chromedp.WaitVisible(chromedp.ID("view-login")),
		chromedp.SendKeys(chromedp.ID("login-email"), email),
		chromedp.SendKeys(chromedp.ID("login-password"), password),
		chromedp.Click(chromedp.ID("login-btn")),
		chromedp.WaitVisible(chromedp.ID("message")),
	)
	if got := text("message"); got != "Please confirm your email first with the code we sent to your email address." {
		t.Fatalf("signing in unconfirmed, the page says %q", got)
	}
}

func outboxCode(t *testing.T, base, email string) string {
	t.Helper()
	resp, err := http.Get(base + "/dev/outbox?to=" + email)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var box struct {
		Messages []struct{ Code string } `json:"messages"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&box); err != nil || len(box.Messages) == 0 {
		t.Fatalf("outbox: %v %+v", err, box)
	}
	return box.Messages[len(box.Messages)-1].Code
}

type apiSession struct{ access, sid string }

// iPhoneSafari is the User-Agent of Safari on an iPhone.
const iPhoneSafari = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"

// apiLogin signs in through the API, as another device whose User-Agent
// is userAgent (a made-up one when none).
func apiLogin(t *testing.T, base, email, password string, userAgent ...string) apiSession {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"email": email, "password": password})
	req, _ := http.NewRequest("POST", base+"/auth/login", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "second-device")
	if len(userAgent) > 0 {
		req.Header.Set("User-Agent", userAgent[0])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		Access  string `json:"access_token"`
		Session struct {
			ID string `json:"session_family_id"`
		} `json:"session"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || out.Access == "" {
		t.Fatalf("api login: %d %v", resp.StatusCode, err)
	}
	return apiSession{access: out.Access, sid: out.Session.ID}
}

func profileStatus(t *testing.T, base, access string) int {
	t.Helper()
	req, _ := http.NewRequest("GET", base+"/api/profile", nil)
	req.Header.Set("Authorization", "Bearer "+access)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func refreshStatus(t *testing.T, base, token string) int {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"refresh_token": token})
	resp, err := http.Post(base+"/auth/refresh", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// browser is a headless Chromium for one test, with the helpers its steps
// use; it closes when the test ends.
type browser struct {
	t           *testing.T
	ctx         context.Context
	nextConsole func() (chromedp.ConsoleMessage, error, bool)
	marks       int
}

// openBrowser starts Chromium (exe) for t.
func openBrowser(t *testing.T, exe string) *browser {
	t.Helper()
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(exe),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(900, 1100),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-features", "Translate,MediaRouter,OptimizationHints"),
	)
	t.Cleanup(cancelAlloc)
	ctx, cancel := chromedp.NewContext(allocCtx)
	t.Cleanup(cancel)
	// The browser lives as long as the context of its first run: start it
	// without a timeout, then bound each step.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start Chromium: %v", err)
	}
	// Read from here on what the page writes to the console.
	next, stop := iter.Pull2(chromedp.Console(ctx))
	t.Cleanup(stop)
	return &browser{t: t, ctx: ctx, nextConsole: next}
}

// step is the context of one step: 20 seconds at most.
func (b *browser) step() (context.Context, context.CancelFunc) {
	return context.WithTimeout(b.ctx, 20*time.Second)
}

// do runs steps, failing the test with what on an error.
func (b *browser) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := b.step()
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		b.t.Fatalf("%s: %v", what, err)
	}
}

// text is the text of the element with id, once it is visible.
func (b *browser) text(id string) string {
	b.t.Helper()
	b.do("wait for "+id, chromedp.WaitVisible(chromedp.ID(id)))
	ctx, cancel := b.step()
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID(id)))
	if err != nil {
		b.t.Fatalf("read %s: %v", id, err)
	}
	return s
}

// eval is the value of a JavaScript expression on the page.
func (b *browser) eval(expr string) any {
	b.t.Helper()
	ctx, cancel := b.step()
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[any](expr))
	if err != nil {
		b.t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// consoleErrors returns the errors the page wrote to the console (a failed
// request is one) since the last call: it writes a mark there and reads up
// to it.
func (b *browser) consoleErrors() []string {
	b.t.Helper()
	b.marks++
	mark := fmt.Sprintf("test mark %d", b.marks)
	b.eval(fmt.Sprintf("console.log(%q), true", mark))
	var errs []string
	for {
		m, err, ok := b.nextConsole()
		if !ok || err != nil {
			b.t.Fatalf("read the console: %v", err)
		}
		if m.Type == chromedp.ConsoleLog && m.Text == mark {
			return errs
		}
		if m.Type == chromedp.ConsoleError || m.IsException() {
			errs = append(errs, m.String()+" "+m.URL)
		}
	}
}

// saveScreenshot saves the page as name in the test's directory (and in
// FIBERAUTH_SCREENSHOT_DIR when set), and says where in the test log.
func saveScreenshot(t *testing.T, step func() (context.Context, context.CancelFunc), name string) {
	t.Helper()
	ctx, cancel := step()
	defer cancel()
	shot, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)) // quality 100 is PNG
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	artifact := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(artifact, shot, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot %s: %s", name, artifact)
	if dir := os.Getenv("FIBERAUTH_SCREENSHOT_DIR"); dir != "" {
		_ = os.WriteFile(filepath.Join(dir, name), shot, 0o644)
	}
}
