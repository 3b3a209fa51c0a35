-- Version 7: the signing keys fiberauth generates (Config.SigningAlgorithm),
-- shared by every instance on this database. The private key is sealed
-- (AES-GCM under a key derived from Config.Secret) before it gets here.

CREATE TABLE fiberauth_signing_keys (
    generation BIGINT PRIMARY KEY,     -- one more than the key before it
    id         TEXT   NOT NULL UNIQUE, -- the kid of the tokens it signs
    algorithm  TEXT   NOT NULL,        -- EdDSA or ES256
    sealed     BYTEA  NOT NULL,        -- PKCS#8, sealed
    created_at BIGINT NOT NULL,
    not_before BIGINT NOT NULL         -- when it starts signing
);
