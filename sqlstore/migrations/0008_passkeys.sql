-- Version 8: the users' passkeys (WebAuthn credentials), by credential id.

CREATE TABLE fiberauth_passkeys (
    id               BYTEA   PRIMARY KEY,   -- the credential id the authenticator chose
    user_id          TEXT    NOT NULL,
    public_key       BYTEA   NOT NULL,      -- COSE, as registered
    sign_count       BIGINT  NOT NULL,      -- the authenticator's counter at the last use
    transports       TEXT    NOT NULL,      -- comma-separated ("internal,hybrid")
    aaguid           BYTEA   NOT NULL,
    backup_eligible  BOOLEAN NOT NULL,
    backup_state     BOOLEAN NOT NULL,
    attestation_type TEXT    NOT NULL,
    name             TEXT    NOT NULL,
    created_at       BIGINT  NOT NULL,
    last_used_at     BIGINT  NOT NULL
);
CREATE INDEX fiberauth_passkeys_user ON fiberauth_passkeys (user_id, created_at);
