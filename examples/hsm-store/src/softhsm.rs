//! SoftHSM2 as a service's HSM, with its token folder inside the service's state folder: the
//! configuration file and token folder `create` writes, and `use_config`, which points SoftHSM at
//! that file through `SOFTHSM2_CONF` (the system configuration in /etc/softhsm is never read or
//! changed).

use crate::{Error, Result};
use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// Where Debian's `softhsm2` package installs the module.
pub const DEFAULT_MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";
/// The configuration file inside a state folder.
pub const CONF_FILE: &str = "softhsm2.conf";
/// The token folder inside a state folder.
pub const TOKEN_DIR: &str = "softhsm-tokens";
const ENV: &str = "SOFTHSM2_CONF";

/// Writes `dir/softhsm2.conf` (0600) naming the token folder `dir/softhsm-tokens` (0700, created);
/// neither may exist. Returns the configuration file's path.
pub fn create(dir: &Path) -> Result<PathBuf> {
    let io = |p: &Path| {
        let shown = p.display().to_string();
        move |e: std::io::Error| Error::Config(format!("{shown}: {e}"))
    };
    let tokens = dir.join(TOKEN_DIR);
    fs::DirBuilder::new()
        .mode(0o700)
        .create(&tokens)
        .map_err(io(&tokens))?;
    let conf = dir.join(CONF_FILE);
    let text = format!(
        "# SoftHSM2 for this state folder (written by the service's init; used through {ENV}).\n\
         directories.tokendir = {}\n\
         objectstore.backend = file\n\
         log.level = ERROR\n\
         slots.removable = false\n\
         slots.mechanisms = ALL\n\
         library.reset_on_fork = false\n",
        tokens.display()
    );
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&conf)
        .map_err(io(&conf))?;
    f.write_all(text.as_bytes()).map_err(io(&conf))?;
    f.sync_all().map_err(io(&conf))?;
    Ok(conf)
}

/// Points SoftHSM at `conf` for this process. SoftHSM reads the variable when it is initialized, so
/// this must come before the first `Module::load` of this process; and, since it changes the
/// process environment, while no other thread of the process runs (at the start of `main`).
pub fn use_config(conf: &Path) -> Result<()> {
    let current = std::env::var_os(ENV);
    if current.as_deref() == Some(conf.as_os_str()) {
        return Ok(());
    }
    if crate::module::any_loaded() {
        return Err(Error::Config(format!(
            "{ENV} cannot change to {} after a PKCS#11 module was loaded in this process",
            conf.display()
        )));
    }
    std::env::set_var(ENV, conf);
    Ok(())
}
