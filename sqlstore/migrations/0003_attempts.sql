-- Version 3: throttling windows, shared by every instance on this database.

CREATE TABLE fiberauth_attempts (
    name    TEXT    PRIMARY KEY,   -- what is throttled, e.g. "login:acct:ada@example.com"
    count   INTEGER NOT NULL,
    ends_at BIGINT  NOT NULL       -- when the window closes
);
CREATE INDEX fiberauth_attempts_ends ON fiberauth_attempts (ends_at);
