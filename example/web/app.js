// The example's web app: plain JS, no build step. It talks to fiberauth's
// cookie-mode handlers on /web/auth. The refresh token is an HttpOnly cookie
// this script never sees; the access token lives in a variable only; the
// CSRF token (not a credential on its own) is kept in localStorage so that a
// reload can refresh.
"use strict";

const AUTH = "/web/auth";
const CSRF_KEY = "fiberauth.csrf";
// The server serves the page with data-outbox="on" only when it has the
// development outbox (/dev/outbox); otherwise codes come by email, and the
// page never asks for the outbox.
const OUTBOX = document.documentElement.dataset.outbox === "on";
// data-passkeys="on": the server has passkeys (WebAuthn) on for this page's
// origin.
const PASSKEYS = document.documentElement.dataset.passkeys === "on" && !!window.PublicKeyCredential;

let access = null;          // the access token, in memory only
let refreshTimer = null;
let challenge = null;       // {session, email} while a login challenge is open

const $ = (id) => document.getElementById(id);

// Words for every error of the API contract.
const MESSAGES = {
  invalid_credentials: "Wrong email, username or password.",
  email_not_verified: OUTBOX
    ? "Please confirm your email first: the code is in the development outbox."
    : "Please confirm your email first with the code we sent to your email address.",
  conflict: "That email or username is already registered.",
  invalid_grant: "That code or sign-in step is not valid any more. Please try again.",
  invalid_token: "Your session has ended. Please sign in again.",
  refresh_token_reused: "For your safety this session was ended. Please sign in again.",
  csrf_failed: "A security check failed. Please sign in again.",
  forbidden: "You are not allowed to do that.",
  not_found: "That session no longer exists.",
  payload_too_large: "That input is too long.",
  rate_limited: "Too many attempts. Please wait a little and try again.",
  unavailable: "The service is unavailable right now. Please try again shortly.",
};

const REASONS = {
  too_short: "is too short",
  too_long: "is too long",
  too_common: "is too common; choose a less guessable one",
  missing: "is required",
  invalid: "is not valid",
};

// Words for why a passkey's answer was refused (where "credential").
const PASSKEY_REASONS = {
  challenge_unknown: "That passkey request expired or was already used. Please try again.",
  credential_unknown: "This passkey is not registered here (it may have been removed). Sign in with your password.",
  origin_mismatch: "This passkey request came from another site.",
  rp_id_mismatch: "This passkey belongs to another site.",
  verification_failed: "The passkey could not be verified. Please try again.",
  sign_count: "This passkey was refused: it may have been copied. Sign in with your password.",
  user_verification_required: "Your account has two-factor authentication: use a passkey that asks for your PIN, fingerprint or face.",
  already_registered: "This passkey is already registered.",
  too_many: "You have the most passkeys allowed: remove one first.",
};

function describe(data, status) {
  if (data && data.where === "credential" && PASSKEY_REASONS[data.reason]) return PASSKEY_REASONS[data.reason];
  if (data && data.where === "password" && data.reason === "step_up_required") return "Enter your current password (and a code from your app, with two-factor authentication on), then try again.";
  if (data && data.error === "invalid_request" && data.where) {
    const field = data.where.replace(/_/g, " ");
    return `The ${field} ${REASONS[data.reason] || "is not valid"}.`;
  }
  if (data && MESSAGES[data.error]) return MESSAGES[data.error];
  if (status === 0) return "The server cannot be reached. Check your connection.";
  return (data && data.message) || "Something went wrong. Please try again.";
}

function say(text, isError) {
  const m = $("message");
  m.textContent = text;
  m.classList.toggle("error", !!isError);
  m.hidden = !text;
}

function show(view) {
  for (const s of document.querySelectorAll("main > section")) s.hidden = s.id !== "view-" + view;
}

// call sends JSON and returns the decoded answer, or throws an Error whose
// message is fit for a person.
async function call(method, path, body, opts = {}) {
  const headers = { "Content-Type": "application/json" };
  if (opts.auth && access) headers.Authorization = "Bearer " + access;
  if (opts.csrf) headers["X-CSRF-Token"] = localStorage.getItem(CSRF_KEY) || "";
  let res;
  try {
    res = await fetch(path, { method, headers, credentials: "same-origin", body: body ? JSON.stringify(body) : undefined });
  } catch (e) {
    throw Object.assign(new Error(describe(null, 0)), { code: "network" });
  }
  let data = null;
  try { data = await res.json(); } catch (e) { data = null; }
  if (!res.ok) throw Object.assign(new Error(describe(data, res.status)), { code: data && data.error, status: res.status });
  return data;
}

// takeTokens keeps a token response and schedules the next refresh a minute
// before the access token expires.
function takeTokens(data) {
  access = data.access_token;
  if (data.csrf_token) localStorage.setItem(CSRF_KEY, data.csrf_token);
  clearTimeout(refreshTimer);
  const wait = Math.max(5, (data.expires_in || 60) - 60);
  refreshTimer = setTimeout(refresh, wait * 1000);
}

async function refresh() {
  try {
    takeTokens(await call("POST", AUTH + "/refresh", {}, { csrf: true }));
    return true;
  } catch (e) {
    if (e.code !== "network" && e.code !== "unavailable") signedOut(e.message);
    else say(e.message, true);
    return false;
  }
}

function signedOut(why) {
  access = null;
  clearTimeout(refreshTimer);
  localStorage.removeItem(CSRF_KEY);
  // Nothing of the account stays in the page: the next sign-in reads it
  // afresh.
  $("sessions").replaceChildren();
  $("passkeys").replaceChildren();
  show("login");
  if (why) say(why, true);
}

// afterLogin handles what a sign-in step answered: tokens or a challenge.
async function afterLogin(data, email) {
  if (data.challenge_name === "SOFTWARE_TOKEN_MFA") {
    challenge = { session: data.session, email };
    $("mfa-passkey").hidden = !(PASSKEYS && (data.available_challenges || []).includes("WEB_AUTHN"));
    show("mfa");
    $("mfa-code").focus();
    return;
  }
  if (data.challenge_name === "NEW_PASSWORD_REQUIRED") {
    challenge = { session: data.session, email };
    show("newpw");
    return;
  }
  takeTokens(data);
  say("");
  await home();
}

async function home() {
  show("home");
  try {
    const p = await call("GET", "/api/profile", null, { auth: true });
    $("profile-email").textContent = p.email;
    $("profile-id").textContent = p.user_id;
    await loadSessions();
    await loadMFA();
    if (PASSKEYS) await loadPasskeys();
  } catch (e) {
    if (e.status === 401 && (await refresh())) return home();
    say(e.message, true);
  }
}

function when(iso) {
  const d = new Date(iso);
  return isNaN(d) ? "" : d.toLocaleString();
}

// deviceName is a User-Agent as a person names a device: "Chrome on
// Linux", "Safari on iPhone", "curl". The full string is the row's title.
function deviceName(ua) {
  if (!ua) return "Unknown device";
  const browser =
    /Edg\//.test(ua) ? "Edge" :
    /OPR\/|Opera/.test(ua) ? "Opera" :
    /Firefox\//.test(ua) ? "Firefox" :
    /Chrome\/|Chromium\/|CriOS\//.test(ua) ? "Chrome" :
    /Safari\//.test(ua) ? "Safari" :
    /^curl\//.test(ua) ? "curl" :
    /^Go-http-client\//.test(ua) ? "A Go program" : null;
  const os =
    /iPhone/.test(ua) ? "iPhone" :
    /iPad/.test(ua) ? "iPad" :
    /Android/.test(ua) ? "Android" :
    /Windows/.test(ua) ? "Windows" :
    /Mac OS X|Macintosh/.test(ua) ? "macOS" :
    /CrOS/.test(ua) ? "ChromeOS" :
    /Linux/.test(ua) ? "Linux" : null;
  if (browser && os) return `${browser} on ${os}`;
  return browser || os || ua.slice(0, 40);
}

async function loadSessions() {
  const data = await call("GET", AUTH + "/sessions", null, { auth: true });
  const list = $("sessions");
  list.replaceChildren();
  let others = 0;
  for (const s of data.sessions) {
    const li = document.createElement("li");
    li.dataset.id = s.session_family_id;
    li.title = s.user_agent || "";
    const info = document.createElement("span");
    info.className = "device";
    info.textContent = `${deviceName(s.user_agent)} · ${s.ip} · since ${when(s.created_at)}`;
    li.append(info);
    if (!s.current) others++;
    if (s.current) {
      const here = document.createElement("span");
      here.className = "current";
      here.textContent = "this device";
      li.append(here);
    } else {
      const end = document.createElement("button");
      end.type = "button";
      end.className = "end";
      end.textContent = "End this session";
      end.addEventListener("click", () => endSession(s.session_family_id));
      li.append(end);
    }
    list.append(li);
  }
  $("sign-out-others").hidden = others === 0;
}

// loadMFA shows whether two-factor authentication is on, or the form that
// sets it up.
async function loadMFA() {
  const me = await call("GET", AUTH + "/me", null, { auth: true });
  const on = !!me.user.mfa_enabled;
  $("mfa-on").hidden = !on;
  $("mfa-setup-form").hidden = on || !$("mfa-recovery").hidden;
  $("mfa-enable-form").hidden = true;
}

let mfaPassword = "";   // between setup and enable only

async function setupMFA() {
  mfaPassword = $("mfa-setup-password").value;
  const setup = await call("POST", AUTH + "/2fa/setup", { password: mfaPassword }, { auth: true });
  $("mfa-setup-password").value = "";
  const res = await fetch("/api/2fa/qr", {
    method: "POST", credentials: "same-origin",
    headers: { "Content-Type": "application/json", Authorization: "Bearer " + access },
    body: JSON.stringify({ otpauth_url: setup.otpauth_url }),
  });
  if (!res.ok) throw new Error(describe(null, res.status));
  const old = $("mfa-qr").src;
  $("mfa-qr").src = URL.createObjectURL(await res.blob());
  if (old.startsWith("blob:")) URL.revokeObjectURL(old);
  $("mfa-secret").textContent = setup.secret;
  $("mfa-setup-form").hidden = true;
  $("mfa-enable-form").hidden = false;
  $("mfa-enable-code").focus();
}

async function enableMFA() {
  const data = await call("POST", AUTH + "/2fa/enable", { password: mfaPassword, code: $("mfa-enable-code").value.trim() }, { auth: true });
  mfaPassword = "";
  $("mfa-enable-code").value = "";
  $("mfa-secret").textContent = "";
  $("mfa-enable-form").hidden = true;
  const list = $("mfa-recovery-codes");
  list.replaceChildren(...data.recovery_codes.map((c) => Object.assign(document.createElement("li"), { textContent: c })));
  $("mfa-recovery").hidden = false;
  // The account changed (its etag), and the other sessions ended: a fresh
  // access token, and the list again.
  if (await refresh()) {
    say("Two-factor authentication is on. Your other sessions were signed out.");
    await loadSessions();
    await loadMFA();
  }
}

// --- passkeys (WebAuthn) ---

const b64u = {
  decode: (s) => Uint8Array.from(atob(s.replace(/-/g, "+").replace(/_/g, "/")), (c) => c.charCodeAt(0)).buffer,
  encode: (buf) => btoa(String.fromCharCode(...new Uint8Array(buf))).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, ""),
};

// creationOptions and requestOptions turn the server's JSON options into
// what navigator.credentials takes (the browser's own parser if it has one).
function creationOptions(o) {
  if (PublicKeyCredential.parseCreationOptionsFromJSON) return PublicKeyCredential.parseCreationOptionsFromJSON(o);
  return {
    ...o, challenge: b64u.decode(o.challenge), user: { ...o.user, id: b64u.decode(o.user.id) },
    excludeCredentials: (o.excludeCredentials || []).map((c) => ({ ...c, id: b64u.decode(c.id) })),
  };
}

function requestOptions(o) {
  if (PublicKeyCredential.parseRequestOptionsFromJSON) return PublicKeyCredential.parseRequestOptionsFromJSON(o);
  return { ...o, challenge: b64u.decode(o.challenge), allowCredentials: (o.allowCredentials || []).map((c) => ({ ...c, id: b64u.decode(c.id) })) };
}

// credentialJSON is a new credential or an assertion as the server takes it.
function credentialJSON(c) {
  if (c.toJSON) return c.toJSON();
  const r = c.response, out = { id: c.id, rawId: b64u.encode(c.rawId), type: c.type, clientExtensionResults: c.getClientExtensionResults(), response: { clientDataJSON: b64u.encode(r.clientDataJSON) } };
  if (r.attestationObject) {
    out.response.attestationObject = b64u.encode(r.attestationObject);
    out.response.transports = r.getTransports ? r.getTransports() : [];
  } else {
    Object.assign(out.response, { authenticatorData: b64u.encode(r.authenticatorData), signature: b64u.encode(r.signature), userHandle: r.userHandle ? b64u.encode(r.userHandle) : undefined });
  }
  return out;
}

// ask runs a WebAuthn ceremony, with words for a person when the browser
// gives up (the user cancelled, or it timed out).
async function ask(how, publicKey) {
  try {
    return await navigator.credentials[how]({ publicKey });
  } catch (e) {
    throw new Error(e.name === "NotAllowedError" ? "The passkey request was cancelled or timed out." :
      e.name === "InvalidStateError" ? "This device already has a passkey for your account." :
      "Your browser could not use a passkey here: " + e.message);
  }
}

// signInWithPasskey signs in with a passkey the browser offers.
async function signInWithPasskey() {
  const o = await call("POST", AUTH + "/login/passkey/options", {});
  const cred = await ask("get", requestOptions(o.publicKey));
  const data = await call("POST", AUTH + "/login/passkey", { credential: credentialJSON(cred), sliding: $("login-sliding").checked });
  await afterLogin(data, "");
}

// answerWithPasskey answers the two-step challenge with a passkey.
async function answerWithPasskey() {
  const o = await call("POST", AUTH + "/login/2fa/passkey/options", { session: challenge.session });
  const cred = await ask("get", requestOptions(o.publicKey));
  await afterLogin(await call("POST", AUTH + "/login/2fa", { session: challenge.session, credential: credentialJSON(cred) }), challenge.email);
}

// stepUp is the password and code typed for changing passkeys: none
// while the sign-in is fresh.
function stepUp() {
  const up = {}, password = $("passkey-password").value, code = $("passkey-code").value.trim();
  if (password) up.password = password;
  if (code) up.code = code;
  return up;
}

// withStepUp runs fn, and shows the password field when the server asks
// for it.
async function withStepUp(fn) {
  try {
    await fn();
    $("passkey-password").value = "";
    $("passkey-code").value = "";
    $("passkey-stepup").hidden = true;
  } catch (e) {
    if (e.status === 400 || e.code === "invalid_credentials") $("passkey-stepup").hidden = false;
    throw e;
  }
}

async function loadPasskeys() {
  const data = await call("GET", AUTH + "/passkeys", null, { auth: true });
  const list = $("passkeys");
  list.replaceChildren();
  for (const k of data.passkeys) {
    const li = document.createElement("li");
    li.dataset.id = k.id;
    const name = Object.assign(document.createElement("input"), { value: k.name, maxLength: 64, className: "passkey-name" });
    name.setAttribute("aria-label", "Passkey name");
    const rename = Object.assign(document.createElement("button"), { type: "button", className: "small rename", textContent: "Rename" });
    rename.addEventListener("click", () => act(() => renamePasskey(k.id, name.value)));
    const remove = Object.assign(document.createElement("button"), { type: "button", className: "end remove", textContent: "Remove" });
    remove.addEventListener("click", () => act(() => removePasskey(k.id, k.name)));
    const info = Object.assign(document.createElement("span"), { className: "when",
      textContent: `Added ${when(k.created_at)}` + (k.last_used_at ? ` · last used ${when(k.last_used_at)}` : " · not used yet") + (k.backed_up ? " · synced" : "") });
    li.append(name, rename, remove, info);
    list.append(li);
  }
  $("passkeys-none").hidden = data.passkeys.length > 0;
}

// act runs a click's work, saying what went wrong.
async function act(fn) {
  try {
    await fn();
  } catch (e) {
    say(e.message, true);
  }
}

async function addPasskey() {
  await withStepUp(async () => {
    const o = await call("POST", AUTH + "/passkeys/register/options", stepUp(), { auth: true });
    const cred = await ask("create", creationOptions(o.publicKey));
    await call("POST", AUTH + "/passkeys/register", { credential: credentialJSON(cred), name: $("passkey-name").value.trim() }, { auth: true });
  });
  $("passkey-name").value = "";
  // The account changed (its etag): a fresh access token first.
  if (await refresh()) {
    await loadPasskeys();
    say("Passkey added. You can sign in with it from now on.");
  }
}

async function renamePasskey(id, name) {
  await call("PATCH", AUTH + "/passkeys/" + encodeURIComponent(id), { name: name.trim() }, { auth: true });
  await loadPasskeys();
  say("Passkey renamed.");
}

async function removePasskey(id, name) {
  await withStepUp(() => call("DELETE", AUTH + "/passkeys/" + encodeURIComponent(id), stepUp(), { auth: true }));
  if (await refresh()) {
    await loadPasskeys();
    say(`Passkey “${name}” removed.`);
  }
}

// signOutOthers ends every session but this one.
async function signOutOthers() {
  try {
    const data = await call("GET", AUTH + "/sessions", null, { auth: true });
    const others = data.sessions.filter((s) => !s.current);
    for (const s of others) {
      await call("DELETE", AUTH + "/sessions/" + encodeURIComponent(s.session_family_id), null, { auth: true });
    }
    say(others.length === 1 ? "The other session was signed out." : `${others.length} other sessions were signed out.`);
    await loadSessions();
  } catch (e) {
    say(e.message, true);
  }
}

async function endSession(id) {
  try {
    await call("DELETE", AUTH + "/sessions/" + encodeURIComponent(id), null, { auth: true });
    say("The session was ended.");
    await loadSessions();
  } catch (e) {
    say(e.message, true);
  }
}

// form wires a form's submit to fn, with its button disabled meanwhile.
function form(id, fn) {
  $(id).addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const btn = ev.target.querySelector("button[type=submit]");
    btn.disabled = true;
    try {
      await fn();
    } catch (e) {
      say(e.message, true);
    } finally {
      btn.disabled = false;
    }
  });
}

form("signup-form", async () => {
  const email = $("signup-email").value.trim();
  await call("POST", AUTH + "/signup", { email, password: $("signup-password").value });
  $("confirm-email").value = email;
  if (OUTBOX) $("outbox-link").href = "/dev/outbox?to=" + encodeURIComponent(email.toLowerCase());
  show("confirm");
  say(OUTBOX
    ? "Check the development outbox: enter the confirmation code we sent to this address."
    : "Check your email: enter the confirmation code we sent to this address.");
});

form("confirm-form", async () => {
  const email = $("confirm-email").value.trim();
  await call("POST", AUTH + "/email/confirm", { email, code: $("confirm-code").value.trim() });
  $("login-email").value = email;
  show("login");
  say("Email confirmed. You can sign in now.");
});

form("login-form", async () => {
  const email = $("login-email").value.trim();
  const data = await call("POST", AUTH + "/login", { email, password: $("login-password").value, sliding: $("login-sliding").checked });
  $("login-password").value = "";
  await afterLogin(data, email);
});

form("mfa-form", async () => {
  try {
    const data = await call("POST", AUTH + "/login/2fa", { session: challenge.session, code: $("mfa-code").value.trim() });
    $("mfa-code").value = "";
    await afterLogin(data, challenge.email);
  } catch (e) {
    if (e.code === "invalid_grant") e.message = "That code did not work. Check your app and try again, or sign in again.";
    throw e;
  }
});

form("newpw-form", async () => {
  const data = await call("POST", AUTH + "/login/new-password", { session: challenge.session, email: challenge.email, new_password: $("newpw-password").value });
  $("newpw-password").value = "";
  await afterLogin(data, challenge.email);
});

form("mfa-setup-form", setupMFA);
form("passkey-add-form", addPasskey);
$("passkey-login-btn").addEventListener("click", () => act(signInWithPasskey));
$("mfa-passkey-btn").addEventListener("click", () => act(answerWithPasskey));
for (const el of document.querySelectorAll(".passkey-only")) el.hidden = !PASSKEYS;
form("mfa-enable-form", async () => {
  try {
    await enableMFA();
  } catch (e) {
    if (e.code === "invalid_grant" || e.status === 400) e.message = "That code did not work. Check the app's clock and try the next code.";
    throw e;
  }
});
$("mfa-recovery-done").addEventListener("click", () => {
  $("mfa-recovery-codes").replaceChildren();
  $("mfa-recovery").hidden = true;
  loadMFA().catch((e) => say(e.message, true));
});

form("password-form", async () => {
  const data = await call("POST", AUTH + "/password/change", { previous_password: $("password-current").value, proposed_password: $("password-new").value }, { auth: true });
  $("password-current").value = "";
  $("password-new").value = "";
  takeTokens(data);
  say("Password changed. Your other sessions were signed out.");
  await loadSessions();
});

$("sessions-reload").addEventListener("click", () => loadSessions().catch((e) => say(e.message, true)));
$("sign-out-others").addEventListener("click", signOutOthers);

$("logout-btn").addEventListener("click", async () => {
  try {
    await call("POST", AUTH + "/logout", null, { auth: true });
  } catch (e) {
    // The access token was refused (expired, say): end the session by the
    // refresh cookie instead, which the server expires only once it has.
    try {
      await call("POST", AUTH + "/logout", null, { csrf: true });
    } catch (e2) {
      // Signed out here either way; the cookie is dead or will be refused.
    }
  }
  signedOut();
  say("You are signed out.");
});

$("outbox-hint").hidden = !OUTBOX;
$("mail-hint").hidden = OUTBOX;

for (const a of document.querySelectorAll("a[data-view]")) {
  a.addEventListener("click", (ev) => {
    ev.preventDefault();
    say("");
    show(a.dataset.view);
  });
}

// On load: a CSRF token means there may be a session cookie; try it.
(async () => {
  if (localStorage.getItem(CSRF_KEY) && (await refresh())) {
    await home();
  } else {
    show("login");
  }
})();
