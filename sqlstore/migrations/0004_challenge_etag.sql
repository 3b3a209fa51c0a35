-- Version 4: a login challenge is bound to the user's etag when it was
-- issued, so that any change of the user (a password set or reset, 2FA
-- switched) ends it.

ALTER TABLE fiberauth_challenges ADD COLUMN etag TEXT NOT NULL DEFAULT '';
