-- Version 2: TOTP second factor, recovery codes, temporary passwords and
-- login challenges.

ALTER TABLE fiberauth_users ADD COLUMN password_temporary BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE fiberauth_users ADD COLUMN password_expires_at BIGINT NOT NULL DEFAULT 0;
ALTER TABLE fiberauth_users ADD COLUMN totp_secret BYTEA;                 -- sealed with AES-GCM
ALTER TABLE fiberauth_users ADD COLUMN totp_last_step BIGINT NOT NULL DEFAULT 0;
ALTER TABLE fiberauth_users ADD COLUMN recovery_codes TEXT NOT NULL DEFAULT '[]'; -- JSON array of base64 keyed hashes

-- A login challenge session (second step of a login), stored as a hash.
CREATE TABLE fiberauth_challenges (
    hash       BYTEA   PRIMARY KEY,
    user_id    TEXT    NOT NULL,
    kind       TEXT    NOT NULL,
    sliding    BOOLEAN NOT NULL,
    expires_at BIGINT  NOT NULL,
    attempts   INTEGER NOT NULL
);
CREATE INDEX fiberauth_challenges_expires ON fiberauth_challenges (expires_at);
