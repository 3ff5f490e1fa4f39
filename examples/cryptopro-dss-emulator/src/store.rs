//! The SQLite state of the emulator: its schema (after csc-server's meta table and audit trail), opened
//! through csc-server's `Db`. Bearer secrets (tokens, RefIDs) are stored as their SHA-256 only.

use csc_server::db::Db;
use std::path::Path;

pub const SCHEMA_VERSION: i64 = 1;

const SCHEMA: &str = r#"
CREATE TABLE users (
    name           TEXT PRIMARY KEY,
    position       INTEGER NOT NULL,
    display_name   TEXT NOT NULL,
    password_hash  TEXT NOT NULL,
    login_failures INTEGER NOT NULL DEFAULT 0,
    login_locked   INTEGER NOT NULL DEFAULT 0,
    -- The second factor of the confirmation page login (the user's phone): a TOTP secret, sealed. The
    -- column names are csc-server's, whose lockout counters (lockouts.rs) work on this table too.
    sealed_account_totp    BLOB NOT NULL,
    account_totp_period    INTEGER NOT NULL,
    account_totp_last_step INTEGER,
    account_otp_failures   INTEGER NOT NULL DEFAULT 0,
    account_otp_locked     INTEGER NOT NULL DEFAULT 0
);
-- OAuth clients registered at the identity service (public clients: an ID, no secret).
CREATE TABLE clients (
    id TEXT PRIMARY KEY
);
CREATE TABLE certificates (
    id            INTEGER PRIMARY KEY,
    user          TEXT NOT NULL REFERENCES users(name),
    friendly_name TEXT NOT NULL,
    kind          TEXT NOT NULL,
    is_default    INTEGER NOT NULL,
    der           BLOB NOT NULL,
    -- GOST: the PKCS#8 PEM private key, sealed under the master key (SoftHSM has no GOST).
    sealed_key    BLOB,
    -- RSA: the key's label in the SoftHSM token.
    hsm_label     TEXT,
    CHECK ((sealed_key IS NULL) != (hsm_label IS NULL))
);
-- Access and refresh tokens of the OAuth sign-in, tokens of confirmed sign-ins (`session`) and of
-- confirmed transactions (`operation`).
CREATE TABLE tokens (
    hash           BLOB PRIMARY KEY,
    user           TEXT NOT NULL REFERENCES users(name),
    kind           TEXT NOT NULL CHECK (kind IN ('access', 'refresh', 'session', 'operation')),
    transaction_id TEXT,
    created_at     INTEGER NOT NULL,
    expires_at     INTEGER NOT NULL,
    used           INTEGER NOT NULL DEFAULT 0,
    revoked        INTEGER NOT NULL DEFAULT 0
);
-- Operations to confirm: one document (SignDocument) or a package (SignDocuments), raw GOST signatures
-- of the hashes given.
CREATE TABLE transactions (
    id          TEXT PRIMARY KEY,
    user        TEXT NOT NULL REFERENCES users(name),
    certificate INTEGER NOT NULL REFERENCES certificates(id),
    operation   INTEGER NOT NULL,
    description TEXT,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    state       TEXT NOT NULL CHECK (state IN ('created', 'confirming', 'confirmed', 'declined', 'done'))
);
CREATE TABLE transaction_documents (
    tx    TEXT NOT NULL REFERENCES transactions(id),
    idx   INTEGER NOT NULL,
    name  TEXT NOT NULL,
    hash  BLOB NOT NULL,
    PRIMARY KEY (tx, idx)
);
-- What waits for the user on the confirmation page: a transaction, or a sign-in (session). The client
-- polls with the RefID (stored as SHA-256); `id` names it on the page.
CREATE TABLE confirmations (
    id             TEXT PRIMARY KEY,
    ref_hash       BLOB NOT NULL UNIQUE,
    user           TEXT NOT NULL REFERENCES users(name),
    kind           TEXT NOT NULL CHECK (kind IN ('operation', 'session')),
    transaction_id TEXT REFERENCES transactions(id),
    client         TEXT,
    created_at     INTEGER NOT NULL,
    expires_at     INTEGER NOT NULL,
    state          TEXT NOT NULL CHECK (state IN ('pending', 'confirmed', 'declined', 'collected')),
    decided_at     INTEGER
);
"#;

pub fn create(path: &Path) -> Result<Db, String> {
    Db::create_with(path, SCHEMA, SCHEMA_VERSION)
}

pub fn open(path: &Path) -> Result<Db, String> {
    Db::open_of(
        path,
        SCHEMA_VERSION,
        crate::model::PROGRAM,
        csc_server::db::Durability::Normal,
    )
}
