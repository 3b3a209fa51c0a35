-- Version 6: the change log through which processes sharing a SQLite file
-- hear of each other's changes (a user changed, families revoked), written
-- in the change's own transaction and polled by each process. seq is given
-- by the writer (the greatest plus one; SQLite writers take turns), so a
-- reader that finds a seq missing knows it has lost changes. PostgreSQL
-- announces changes with NOTIFY instead and leaves this table empty.

CREATE TABLE fiberauth_changes (
	seq     BIGINT PRIMARY KEY,
	at      BIGINT NOT NULL,
	payload TEXT   NOT NULL
);
CREATE INDEX fiberauth_changes_at ON fiberauth_changes (at);
