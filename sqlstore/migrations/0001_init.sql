-- fiberauth schema, version 1. One file serves SQLite and PostgreSQL: the
-- types below mean the same to both (SQLite stores BYTEA values as blobs and
-- BOOLEAN as 0/1). Times are Unix microseconds; 0 means "never".

CREATE TABLE fiberauth_users (
    id             TEXT    PRIMARY KEY,
    email          TEXT    NOT NULL UNIQUE,   -- lowercased
    username       TEXT    UNIQUE,            -- lowercased; NULL when none
    display_name   TEXT    NOT NULL,
    password_hash  TEXT    NOT NULL,          -- argon2id PHC string
    email_verified BOOLEAN NOT NULL,
    mfa_enabled    BOOLEAN NOT NULL,
    roles          TEXT    NOT NULL,          -- JSON array of strings
    attributes     TEXT    NOT NULL,          -- JSON object of strings
    disabled       BOOLEAN NOT NULL,
    etag           TEXT    NOT NULL,
    created_at     BIGINT  NOT NULL,
    updated_at     BIGINT  NOT NULL
);

-- A session family: the chain of refresh tokens one login starts.
CREATE TABLE fiberauth_sessions (
    id                  TEXT    PRIMARY KEY,
    user_id             TEXT    NOT NULL,
    token_hash          BYTEA   NOT NULL,    -- SHA-256 of the current refresh token
    prev_token_hash     BYTEA,               -- the token it replaced, for the grace window
    rotated_at          BIGINT  NOT NULL,
    replay              BYTEA,               -- the pair the last rotation issued, sealed
    sliding             BOOLEAN NOT NULL,
    created_at          BIGINT  NOT NULL,
    last_used_at        BIGINT  NOT NULL,
    expires_at          BIGINT  NOT NULL,
    absolute_expires_at BIGINT  NOT NULL,
    revoked_at          BIGINT  NOT NULL,    -- 0 while not revoked
    user_agent          TEXT    NOT NULL,
    ip                  TEXT    NOT NULL
);
CREATE INDEX fiberauth_sessions_user ON fiberauth_sessions (user_id);
CREATE INDEX fiberauth_sessions_expires ON fiberauth_sessions (expires_at);
CREATE INDEX fiberauth_sessions_absolute ON fiberauth_sessions (absolute_expires_at);

-- Every refresh token hash a family ever held, so that an old token is
-- recognised as reuse. Rows go when their family expires.
CREATE TABLE fiberauth_refresh_tokens (
    hash       BYTEA PRIMARY KEY,
    session_id TEXT  NOT NULL
);
CREATE INDEX fiberauth_refresh_tokens_session ON fiberauth_refresh_tokens (session_id);

-- One-time codes: one per user and purpose, stored as a keyed hash.
CREATE TABLE fiberauth_codes (
    user_id    TEXT    NOT NULL,
    purpose    TEXT    NOT NULL,
    hash       BYTEA   NOT NULL,
    expires_at BIGINT  NOT NULL,
    attempts   INTEGER NOT NULL,
    PRIMARY KEY (user_id, purpose)
);
CREATE INDEX fiberauth_codes_expires ON fiberauth_codes (expires_at);
