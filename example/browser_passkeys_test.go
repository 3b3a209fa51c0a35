package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/webauthn"
	"github.com/chromedp/chromedp"
	"github.com/pquerna/otp/totp"

	"github.com/fiberauth/fiberauth"
)

// TestBrowserPasskeys drives the example's page in headless Chromium with
// a virtual authenticator (the DevTools protocol's WebAuthn domain, as a
// platform authenticator with a PIN or fingerprint would be): add a
// passkey, rename it, sign out, sign in with it, turn on 2FA and answer
// the second step with the passkey, remove it, and be refused when
// signing in with it. The page writes no error to the console, and the
// screenshots are saved (saveScreenshot says where).
func TestBrowserPasskeys(t *testing.T) {
	exe := chromium(t)
	base, auth := startServerAuth(t, options{store: "memory", dev: true})
	const email, password = "grace@example.com", "correct horse battery"
	if _, err := auth.CreateUser(context.Background(), fiberauth.NewUser{Email: email, Password: password, Verified: true}); err != nil {
		t.Fatal(err)
	}

	b := openBrowser(t, exe)
	ctx, cancel := b.step()
	if _, err := chromedp.Call(ctx, webauthn.Enable, webauthn.EnableParams{}); err != nil {
		t.Fatalf("WebAuthn.enable: %v", err)
	}
	authn, err := chromedp.Call(ctx, webauthn.AddVirtualAuthenticator, webauthn.AddVirtualAuthenticatorParams{Options: &webauthn.VirtualAuthenticatorOptions{
		Protocol: webauthn.AuthenticatorProtocolCtap2, Ctap2version: webauthn.Ctap2versionCtap21,
		Transport: webauthn.AuthenticatorTransportInternal, HasResidentKey: true, HasUserVerification: true,
		IsUserVerified: true, AutomaticPresenceSimulation: true,
	}})
	cancel()
	if err != nil {
		t.Fatalf("WebAuthn.addVirtualAuthenticator: %v", err)
	}
	credentials := func() int {
		t.Helper()
		ctx, cancel := b.step()
		defer cancel()
		got, err := chromedp.Call(ctx, webauthn.GetCredentials, webauthn.GetCredentialsParams{AuthenticatorID: authn.AuthenticatorID})
		if err != nil {
			t.Fatalf("WebAuthn.getCredentials: %v", err)
		}
		return len(got.Credentials)
	}
	passkeyNames := func() string {
		t.Helper()
		s, _ := b.eval(`Array.from(document.querySelectorAll("#passkeys li .passkey-name")).map((i) => i.value).join(",")`).(string)
		return s
	}
	signInWithPassword := func() {
		t.Helper()
		b.do("sign in with the password",
			chromedp.WaitVisible(chromedp.ID("view-login")),
			chromedp.SetValue(chromedp.ID("login-email"), email),
			chromedp.SetValue(chromedp.ID("login-password"), password),
			chromedp.Click(chromedp.ID("login-btn")),
		)
	}
	signOut := func() {
		t.Helper()
		b.do("sign out", chromedp.Click(chromedp.ID("logout-btn")), chromedp.WaitVisible(chromedp.ID("view-login")))
	}

	b.do("open the page", chromedp.Navigate(base+"/"), chromedp.WaitVisible(chromedp.ID("passkey-login-btn")))
	signInWithPassword()
	b.do("see the passkeys part", chromedp.WaitVisible(chromedp.ID("view-home")), chromedp.WaitVisible(chromedp.ID("passkeys-none")))

	// Add a passkey: a fresh sign-in needs no password.
	b.do("add a passkey",
		chromedp.SendKeys(chromedp.ID("passkey-name"), "Work laptop"),
		chromedp.Click(chromedp.ID("passkey-add-btn")),
		chromedp.WaitVisible(chromedp.CSS("#passkeys li")),
	)
	if got := passkeyNames(); got != "Work laptop" || credentials() != 1 {
		t.Fatalf("passkeys listed %q, authenticator holds %d", got, credentials())
	}
	saveScreenshot(t, b.step, "passkey-added.png")

	b.do("rename it",
		chromedp.SetValue(chromedp.CSS("#passkeys li .passkey-name"), "Grace's laptop"),
		chromedp.Click(chromedp.CSS("#passkeys li button.rename")),
		chromedp.Poll[chromedp.Void](`document.getElementById("message").textContent === "Passkey renamed."`),
	)
	if got := passkeyNames(); got != "Grace's laptop" {
		t.Fatalf("after renaming, passkeys listed %q", got)
	}

	// Sign out, and back in with the passkey alone.
	signOut()
	b.do("sign in with the passkey",
		chromedp.Click(chromedp.ID("passkey-login-btn")),
		chromedp.WaitVisible(chromedp.ID("view-home")),
		chromedp.WaitVisible(chromedp.CSS("#passkeys li")),
	)
	if got := b.text("profile-email"); got != email {
		t.Fatalf("signed in with the passkey as %q", got)
	}
	// The list from before signing out stays until the new one is read.
	b.do("see the passkey used",
		chromedp.Poll[chromedp.Void](`(document.querySelector("#passkeys li .when") || {}).textContent.includes("last used")`))
	saveScreenshot(t, b.step, "passkey-signed-in.png")

	// Turn on 2FA; then a password sign-in asks for the second step, which
	// the passkey answers.
	b.do("set up 2FA",
		chromedp.SendKeys(chromedp.ID("mfa-setup-password"), password),
		chromedp.Click(chromedp.ID("mfa-setup-btn")),
		chromedp.WaitVisible(chromedp.ID("mfa-enable-form")),
	)
	code, err := totp.GenerateCode(b.text("mfa-secret"), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	b.do("turn 2FA on",
		chromedp.SendKeys(chromedp.ID("mfa-enable-code"), code),
		chromedp.Click(chromedp.ID("mfa-enable-btn")),
		chromedp.WaitVisible(chromedp.CSS("#mfa-recovery-codes li")),
		chromedp.Click(chromedp.ID("mfa-recovery-done")),
		chromedp.WaitVisible(chromedp.ID("mfa-on")),
	)
	signOut()
	signInWithPassword()
	b.do("see the second step", chromedp.WaitVisible(chromedp.ID("view-mfa")), chromedp.WaitVisible(chromedp.ID("mfa-passkey-btn")))
	saveScreenshot(t, b.step, "passkey-second-factor.png")
	b.do("answer it with the passkey",
		chromedp.Click(chromedp.ID("mfa-passkey-btn")),
		chromedp.WaitVisible(chromedp.ID("view-home")),
		chromedp.WaitVisible(chromedp.CSS("#passkeys li")),
	)

	// Remove the passkey (the sign-in is fresh: no password asked).
	b.do("remove the passkey",
		chromedp.Click(chromedp.CSS("#passkeys li button.remove")),
		chromedp.WaitVisible(chromedp.ID("passkeys-none")),
	)
	if got := passkeyNames(); got != "" {
		t.Fatalf("after removing, passkeys listed %q", got)
	}
	saveScreenshot(t, b.step, "passkey-removed.png")
	if errs := b.consoleErrors(); len(errs) > 0 {
		t.Fatalf("the page wrote errors to the console: %q", errs)
	}

	// The authenticator still holds it, but the server no longer knows it.
	signOut()
	b.do("try the removed passkey",
		chromedp.Click(chromedp.ID("passkey-login-btn")),
		chromedp.Poll[chromedp.Void](`document.getElementById("message").classList.contains("error")`),
	)
	if msg := b.text("message"); !strings.Contains(msg, "not registered here") || credentials() != 1 {
		t.Fatalf("signing in with the removed passkey said %q", msg)
	}
	if visible, _ := b.eval(`!document.getElementById("view-login").hidden`).(bool); !visible {
		t.Fatal("the removed passkey signed in")
	}
	saveScreenshot(t, b.step, "passkey-refused.png")
	// The refused sign-in is the page's only console error (the 401).
	if errs := b.consoleErrors(); len(errs) != 1 || !strings.Contains(errs[0], "401") {
		t.Fatalf("console errors after the refused sign-in: %q", errs)
	}
}
