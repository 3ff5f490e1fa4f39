//! Module configurations and the files they name, written the way the module accepts them: one
//! `[[token]]` per scenario on a service, a `[log]` section, secret files of mode 0600.

use crate::service::Service;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// One `[[token]]` of `user` on the service, with `extra` lines (mode, channels, ...).
pub fn token_toml(svc: &Service, label: &str, user: &str, extra: &str) -> String {
    account_token_toml(svc, label, user, &format!("{}{extra}", endpoint_toml(svc)))
}

/// Where the service is and which CA to trust, for a token that signs in its own way.
pub fn endpoint_toml(svc: &Service) -> String {
    format!(
        "url_file = {:?}\nca_file = {:?}\nrequest_timeout_ms = 30000\n",
        svc.state.join("server.url").display().to_string(),
        svc.ca_file().display().to_string(),
    )
}

/// The e-seal account's token signing in with `sign_in` (TOML lines), with the seal's PIN from a file
/// in `dir`.
pub fn seal_token_toml(svc: &Service, dir: &Path, label: &str, sign_in: &str) -> String {
    let pin_file = dir.join(format!("{}.pin", label.replace(' ', "-")));
    let pin = secret_file(&pin_file, &svc.demo.token_of("seal").pin);
    format!(
        "[[token]]\nlabel = {label:?}\n{}api = \"v2\"\n{sign_in}mode = \"login-free\"\npin_file = {:?}\n",
        endpoint_toml(svc),
        pin.display().to_string()
    )
}

/// One `[[token]]` of `user` reaching the service at `url` (a proxy in front of it) and trusting the CA
/// in `ca_file`, with `extra` lines (timeouts, mode, ...).
pub fn token_toml_via(
    svc: &Service,
    url: &str,
    ca_file: &Path,
    label: &str,
    user: &str,
    extra: &str,
) -> String {
    let endpoint = format!(
        "url = {url:?}\nca_file = {:?}\n",
        ca_file.display().to_string()
    );
    account_token_toml(svc, label, user, &format!("{endpoint}{extra}"))
}

fn account_token_toml(svc: &Service, label: &str, user: &str, extra: &str) -> String {
    format!(
        "[[token]]\nlabel = {label:?}\napi = \"v2\"\naccount = {user:?}\nrefresh_token_file = {:?}\n{extra}\n",
        svc.refresh_token_file(user).display().to_string(),
    )
}

/// The lines that have the module compute `credential`'s codes (a TOTP credential of the token's
/// account) from its authenticator secret, written to `dir/<credential>.totp` (0600), with the
/// service's TOTP `period`.
pub fn totp_file_toml(svc: &Service, dir: &Path, credential: &str, period: u64) -> String {
    let (_, cred) = svc.demo.credential(credential);
    let totp = secret_file(
        &dir.join(format!("{credential}.totp")),
        cred.totp_secret.as_deref().expect("a TOTP credential"),
    );
    format!(
        "totp_secret_file = {:?}\ntotp_credential = {credential:?}\ntotp_period = {period}\n",
        totp.display().to_string()
    )
}

/// The lines of an unattended token signing with `credential`: login-free, the PIN in
/// `dir/<credential>.pin` (0600) and the codes from the authenticator secret (`totp_file_toml`).
pub fn unattended_toml(svc: &Service, dir: &Path, credential: &str, period: u64) -> String {
    let (token, _) = svc.demo.credential(credential);
    let pin = secret_file(&dir.join(format!("{credential}.pin")), &token.pin);
    format!(
        "mode = \"login-free\"\npin_file = {:?}\n{}",
        pin.display().to_string(),
        totp_file_toml(svc, dir, credential, period)
    )
}

/// Writes the module configuration (mode 0600) with a `[log]` section and the tokens.
pub fn write_config(dir: &Path, level: &str, log: &Path, tokens: &[String]) -> PathBuf {
    let path = dir.join("cloudtoken.toml");
    let text = format!(
        "[log]\nlevel = {level:?}\nfile = {:?}\n\n{}",
        log.display().to_string(),
        tokens.concat()
    );
    write_private(&path, &text);
    path
}

/// A secret file the module accepts (0600) holding `value` on its first line.
pub fn secret_file(path: &Path, value: &str) -> PathBuf {
    write_private(path, &format!("{value}\n"));
    path.to_path_buf()
}

/// Writes `text` to `path` with mode 0600.
pub fn write_private(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

/// The permission bits of a file.
pub fn mode_of(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("stat {}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

/// Writes `data` to a file in a fresh temporary folder; returns both (the folder must outlive the use).
pub fn temp_file(name: &str, data: &[u8]) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join(name);
    std::fs::write(&p, data).expect("write");
    (dir, p)
}
