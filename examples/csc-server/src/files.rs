//! Files in the state folder, and the one way secrets are read from files (checked on the open
//! handle).

use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

pub struct StateDir(PathBuf);

impl StateDir {
    pub fn new(path: PathBuf) -> StateDir {
        StateDir(path)
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
    pub fn master_key(&self) -> PathBuf {
        self.0.join("master.key")
    }
    pub fn database(&self) -> PathBuf {
        self.0.join("state.db")
    }
    pub fn ca_pem(&self) -> PathBuf {
        self.0.join("ca.pem")
    }
    pub fn server_url(&self) -> PathBuf {
        self.0.join("server.url")
    }
    pub fn sms_outbox(&self) -> PathBuf {
        self.0.join("sms-outbox.jsonl")
    }
    pub fn module_config(&self) -> PathBuf {
        self.0.join("cloudtoken.toml")
    }
    pub fn demo_json(&self) -> PathBuf {
        self.0.join("demo.json")
    }
    pub fn refresh_token(&self, user: &str) -> PathBuf {
        self.0.join(format!("{user}.refresh"))
    }
    pub fn password(&self, user: &str) -> PathBuf {
        self.0.join(format!("{user}.password"))
    }
    pub fn hsm_config(&self) -> PathBuf {
        self.0.join("hsm.toml")
    }
    pub fn hsm_pin(&self) -> PathBuf {
        self.0.join("hsm.pin")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PrivateFileError {
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error("accessible by group or others; chmod 600 it")]
    TooOpen,
}

/// Reads a file that holds a secret, refusing it when group or others may access it. The mode is
/// checked on the opened file, so the file read is the file checked.
pub fn read_private(path: &Path) -> Result<Zeroizing<Vec<u8>>, PrivateFileError> {
    let mut f = fs::File::open(path)?;
    if f.metadata()?.mode() & 0o077 != 0 {
        return Err(PrivateFileError::TooOpen);
    }
    let mut bytes = Zeroizing::new(Vec::new());
    f.read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// Creates `path` (which must not exist) with mode `mode` and writes `data`.
pub fn write_new(path: &Path, data: &[u8], mode: u32) -> std::io::Result<()> {
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)?;
    f.write_all(data)?;
    f.sync_all()
}

/// Replaces `path` atomically (write to a temporary name, then rename), so a reader sees the old or the
/// new content, never a partial one.
pub fn replace(path: &Path, data: &[u8], mode: u32) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    let _ = fs::remove_file(&tmp);
    write_new(&tmp, data, mode)?;
    fs::rename(&tmp, path)
}
