-- Version 5: a session family keeps only its current and previous refresh
-- token hashes, and the generation of its current token: an older token
-- carries its generation, so its reuse is known without keeping every hash
-- a family ever held. Tokens issued before this version (without a
-- generation) no longer refresh: their users sign in again, once.

ALTER TABLE fiberauth_sessions ADD COLUMN generation BIGINT NOT NULL DEFAULT 0;
DROP TABLE fiberauth_refresh_tokens;
