//! The SQLite state: schema, opening and creating the database, and its meta values. The connection
//! all requests share and its group commit are `group`'s (every statement is short; the slow work —
//! Argon2, signing in the HSM — happens outside the connection's lock).

use rusqlite::{params, Connection, OptionalExtension};
use std::path::Path;

mod group;
pub use group::Db;

/// When a commit is durable. In both modes the database is WAL, a commit survives the service
/// crashing, and every answer waits for the commit of its changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// `synchronous = NORMAL`: a power loss may lose the newest commits (not corrupt the file).
    Normal,
    /// `synchronous = FULL`: every commit is fsynced before the answers it covers go out.
    Full,
}

/// 3: the signing keys moved into the HSM (credentials.key_label instead of sealed keys).
/// 4: OAuth 2.0 clients, tokens bound to the client that obtained them, API keys.
const SCHEMA_VERSION: i64 = 4;

/// The `meta` table (name → value) every reference service's database has.
pub const META_SCHEMA: &str = r#"
CREATE TABLE meta (
    name  TEXT PRIMARY KEY,
    value BLOB NOT NULL
);
"#;

const SCHEMA: &str = r#"
CREATE TABLE users (
    name           TEXT PRIMARY KEY,
    position       INTEGER NOT NULL,
    display_name   TEXT NOT NULL,
    password_hash  TEXT NOT NULL,
    pin_hash       TEXT NOT NULL,
    login_failures INTEGER NOT NULL DEFAULT 0,
    login_locked   INTEGER NOT NULL DEFAULT 0,
    pin_failures   INTEGER NOT NULL DEFAULT 0,
    pin_locked     INTEGER NOT NULL DEFAULT 0,
    -- The second factor of the approval page login: a TOTP secret of the account (sealed).
    sealed_account_totp    BLOB,
    account_totp_period    INTEGER,
    account_totp_last_step INTEGER,
    account_otp_failures   INTEGER NOT NULL DEFAULT 0,
    account_otp_locked     INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE credentials (
    id             TEXT PRIMARY KEY,
    position       INTEGER NOT NULL,
    user           TEXT NOT NULL REFERENCES users(name),
    label          TEXT NOT NULL,
    key_kind       TEXT NOT NULL,
    otp_kind       TEXT NOT NULL,
    scal           INTEGER NOT NULL,
    multisign      INTEGER NOT NULL,
    -- Seconds a SAD stays valid; NULL: the service's default.
    sad_lifetime   INTEGER,
    -- The label of the credential's key pair in the HSM (hsm.toml names the token).
    key_label      TEXT NOT NULL,
    certificate    BLOB NOT NULL,
    sealed_totp    BLOB,
    totp_period    INTEGER,
    totp_last_step INTEGER,
    otp_failures   INTEGER NOT NULL DEFAULT 0,
    otp_locked     INTEGER NOT NULL DEFAULT 0,
    sealed_sms     BLOB,
    sms_expires    INTEGER
);
-- Access and refresh tokens, by SHA-256 of the token. `parent`: the refresh token an access token came from.
-- `client`: the OAuth 2.0 client that obtained it (NULL: `auth/login`).
CREATE TABLE tokens (
    hash       BLOB PRIMARY KEY,
    user       TEXT NOT NULL REFERENCES users(name),
    kind       TEXT NOT NULL CHECK (kind IN ('access', 'refresh')),
    created_at INTEGER NOT NULL,
    expires_at INTEGER,
    parent     BLOB,
    revoked    INTEGER NOT NULL DEFAULT 0,
    client     TEXT REFERENCES oauth2_clients(id)
);
-- OAuth 2.0 clients. `secret_hash`: SHA-256 of the client secret (NULL: a public client, PKCE only).
-- `account`: the user a client_credentials client acts for. `grant_types`: space-separated.
-- `redirect_uri`: the registered redirect (for loopback IP addresses any port matches, RFC 8252 §7.3).
CREATE TABLE oauth2_clients (
    id           TEXT PRIMARY KEY,
    name         TEXT NOT NULL,
    secret_hash  BLOB,
    account      TEXT REFERENCES users(name),
    grant_types  TEXT NOT NULL,
    redirect_uri TEXT
);
-- API keys (`x-api-key`), by SHA-256 of the key.
CREATE TABLE api_keys (
    hash       BLOB PRIMARY KEY,
    user       TEXT NOT NULL REFERENCES users(name),
    created_at INTEGER NOT NULL
);
-- Signature Activation Data, by SHA-256 of the SAD.
CREATE TABLE sads (
    hash       BLOB PRIMARY KEY,
    user       TEXT NOT NULL,
    credential TEXT NOT NULL,
    remaining  INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    hash_algo  TEXT,
    bound      INTEGER NOT NULL
);
-- SCAL 2: the hash values a SAD authorizes, one row per signature.
CREATE TABLE sad_hashes (
    sad   BLOB NOT NULL REFERENCES sads(hash) ON DELETE CASCADE ON UPDATE CASCADE,
    idx   INTEGER NOT NULL,
    value BLOB NOT NULL,
    used  INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (sad, idx)
);
-- Authorization requests waiting for the user's approval (v2 asynchronous credentials/authorize).
-- `id` names a request on the approval page; the client polls with the handle, stored as SHA-256.
-- `expires_at` is the deadline of the current state: the decision while pending, the collection of the
-- SAD once approved.
CREATE TABLE approvals (
    id             TEXT PRIMARY KEY,
    handle         BLOB NOT NULL UNIQUE,
    user           TEXT NOT NULL,
    credential     TEXT NOT NULL,
    num_signatures INTEGER NOT NULL,
    bound          INTEGER NOT NULL,
    hash_algo      TEXT,
    description    TEXT,
    client         TEXT,
    created_at     INTEGER NOT NULL,
    expires_at     INTEGER NOT NULL,
    state          TEXT NOT NULL CHECK (state IN ('pending', 'approved', 'declined')),
    decided_at     INTEGER
);
CREATE TABLE approval_hashes (
    approval TEXT NOT NULL REFERENCES approvals(id) ON DELETE CASCADE,
    idx      INTEGER NOT NULL,
    value    BLOB NOT NULL,
    PRIMARY KEY (approval, idx)
);
"#;

fn configure(conn: &Connection, durability: Durability) -> rusqlite::Result<()> {
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    conn.execute_batch(match durability {
        Durability::Normal => {
            "PRAGMA foreign_keys = ON; PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;"
        }
        Durability::Full => {
            "PRAGMA foreign_keys = ON; PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;"
        }
    })?;
    Ok(())
}

impl Db {
    /// Creates the schema in a new database file.
    /// The file is made owner-only first; SQLite gives its -wal and -shm files the same mode.
    pub fn create(path: &Path) -> Result<Db, String> {
        Db::create_with(path, SCHEMA, SCHEMA_VERSION)
    }

    /// Creates a database file with `schema` (after the meta table and the audit trail) at `version`.
    pub fn create_with(path: &Path, schema: &str, version: i64) -> Result<Db, String> {
        crate::files::write_new(path, b"", 0o600)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        Db::create_schema(path, schema, version).map_err(|e| format!("{}: {e}", path.display()))
    }

    fn create_schema(path: &Path, schema: &str, version: i64) -> rusqlite::Result<Db> {
        let conn = Connection::open(path)?;
        configure(&conn, Durability::Full)?;
        for part in [META_SCHEMA, crate::audit::SCHEMA, schema] {
            conn.execute_batch(part)?;
        }
        set_meta(&conn, "schema_version", &version.to_string().into_bytes())?;
        Ok(Db::new(conn))
    }

    pub fn open(path: &Path) -> Result<Db, String> {
        Db::open_with(path, Durability::Normal)
    }

    pub fn open_with(path: &Path, durability: Durability) -> Result<Db, String> {
        Db::open_of(path, SCHEMA_VERSION, "csc-server", durability)
    }

    /// Opens the database of `program` (named in the messages), which must have schema `expected`.
    pub fn open_of(
        path: &Path,
        expected: i64,
        program: &str,
        durability: Durability,
    ) -> Result<Db, String> {
        if !path.exists() {
            return Err(format!(
                "{} does not exist: run `{program} init` first",
                path.display()
            ));
        }
        let conn = Connection::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
        configure(&conn, durability).map_err(|e| format!("{}: {e}", path.display()))?;
        let version = get_meta(&conn, "schema_version")
            .map_err(|e| format!("{}: {e}", path.display()))?
            .and_then(|v| String::from_utf8(v).ok());
        if version.as_deref() != Some(&expected.to_string()) {
            return Err(format!(
                "{}: schema version {} is not this {program}'s ({expected}); create a new state \
                 folder with `{program} init`",
                path.display(),
                version.as_deref().unwrap_or("unknown")
            ));
        }
        Ok(Db::new(conn))
    }

    #[cfg(test)]
    pub fn in_memory() -> Db {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("PRAGMA foreign_keys = ON;").unwrap();
        for part in [META_SCHEMA, crate::audit::SCHEMA, SCHEMA] {
            conn.execute_batch(part).unwrap();
        }
        Db::new(conn)
    }
}

pub fn set_meta(conn: &Connection, name: &str, value: &[u8]) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO meta (name, value) VALUES (?1, ?2)
         ON CONFLICT (name) DO UPDATE SET value = excluded.value",
        params![name, value],
    )?;
    Ok(())
}

pub fn get_meta(conn: &Connection, name: &str) -> rusqlite::Result<Option<Vec<u8>>> {
    conn.query_row("SELECT value FROM meta WHERE name = ?1", [name], |r| {
        r.get(0)
    })
    .optional()
}

/// SHA-256, the database key for bearer secrets (tokens, SADs): a stolen database does not yield them.
pub fn secret_id(secret: &str) -> Vec<u8> {
    use sha2::Digest;
    sha2::Sha256::digest(secret.as_bytes()).to_vec()
}
