//! The world the clients run in: a fresh `csc-server`, the built module, the demo user's four credentials
//! as the token shows them (CKA_ID, certificate checked against the demo CA, allowed mechanisms), and the
//! second factors a user would type: a TOTP code from the demo secret or the SMS the service sends.

use crate::process::Cmd;
use parking_lot::Mutex;
use remote_client::{ApiVersion, ClientConfig, CscClient, Secret};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;
pub use support::tools::parse_objects;
use support::totp::now_secs;
use support::uri::pct;
use support::{module_path, DemoCredential, Service};

/// The demo token every client signs with: it holds one credential of each key type.
pub const USER: &str = "alice";
/// TOTP period the interop service is initialized with: short, because each client process needs a
/// code of its own (the service refuses a step it has accepted before), and long enough for a slow
/// client to use it (a code is handed out with at least two periods of validity left).
pub const TOTP_PERIOD: u64 = 3;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hash {
    Sha1,
    Sha224,
    Sha256,
    Sha384,
    Sha512,
}

impl Hash {
    /// OpenSSL's name (`-sha256`, `digest:sha256`).
    pub fn openssl(self) -> &'static str {
        match self {
            Hash::Sha1 => "sha1",
            Hash::Sha224 => "sha224",
            Hash::Sha256 => "sha256",
            Hash::Sha384 => "sha384",
            Hash::Sha512 => "sha512",
        }
    }

    /// NSS's and pkcs11-tool's spelling (`SHA256`).
    pub fn upper(self) -> &'static str {
        match self {
            Hash::Sha1 => "SHA1",
            Hash::Sha224 => "SHA224",
            Hash::Sha256 => "SHA256",
            Hash::Sha384 => "SHA384",
            Hash::Sha512 => "SHA512",
        }
    }

    pub fn len(self) -> usize {
        match self {
            Hash::Sha1 => 20,
            Hash::Sha224 => 28,
            Hash::Sha256 => 32,
            Hash::Sha384 => 48,
            Hash::Sha512 => 64,
        }
    }

    pub fn digest(self, data: &[u8]) -> Vec<u8> {
        use sha2::Digest;
        match self {
            Hash::Sha1 => sha1::Sha1::digest(data).to_vec(),
            Hash::Sha224 => sha2::Sha224::digest(data).to_vec(),
            Hash::Sha256 => sha2::Sha256::digest(data).to_vec(),
            Hash::Sha384 => sha2::Sha384::digest(data).to_vec(),
            Hash::Sha512 => sha2::Sha512::digest(data).to_vec(),
        }
    }

    /// From pkcs11-tool's mechanism prefix ("SHA256" in "SHA256-RSA-PKCS", "SHA-1"/"SHA1").
    pub fn from_upper(s: &str) -> Option<Hash> {
        Some(match s {
            "SHA1" | "SHA-1" => Hash::Sha1,
            "SHA224" => Hash::Sha224,
            "SHA256" => Hash::Sha256,
            "SHA384" => Hash::Sha384,
            "SHA512" => Hash::Sha512,
            _ => return None,
        })
    }
}

/// One credential as the clients see it through the module.
pub struct Key {
    pub cred: DemoCredential,
    pub token: String,
    pub user: String,
    pub pin: String,
    /// CKA_LABEL (the credential's demo label) and CKA_ID (hex), as pkcs11-tool lists them.
    pub label: String,
    pub id: String,
    /// The certificate read through the module, checked against the demo CA at start-up.
    pub cert_der: Vec<u8>,
    pub cert_pem: PathBuf,
    pub is_rsa: bool,
    /// The hash the suite pairs with this key in the high-level clients: SHA-256 for the 2048/256-bit
    /// keys, SHA-384 for the 3072/384-bit ones (so both hash paths of every client are exercised).
    pub hash: Hash,
    /// CKA_ALLOWED_MECHANISMS of the private key, in pkcs11-tool's names.
    pub mechanisms: Vec<String>,
}

impl Key {
    /// `rsa-2048`, `ec-p256`, ...: the key column of the table.
    pub fn name(&self) -> &str {
        &self.cred.key
    }

    pub fn uses_sms(&self) -> bool {
        self.cred.otp == "sms"
    }

    /// RFC 7512 URI of the private key; `pin` adds `pin-value`.
    pub fn uri(&self, pin: Option<&str>) -> String {
        let mut u = format!(
            "pkcs11:token={};object={};type=private",
            pct(&self.token),
            pct(&self.label)
        );
        if let Some(p) = pin {
            u.push_str(";pin-value=");
            u.push_str(&pct(p));
        }
        u
    }

    /// RFC 7512 URI of the whole token.
    pub fn token_uri(&self) -> String {
        format!("pkcs11:token={}", pct(&self.token))
    }

    /// NSS nickname of the certificate on the token.
    pub fn nickname(&self) -> String {
        format!("{}:{}", self.token, self.label)
    }
}

pub struct Env {
    pub svc: Service,
    pub module: PathBuf,
    /// Everything the cases write; removed at the end unless the suite failed.
    pub work: PathBuf,
    pub keys: Vec<Key>,
    /// A configuration that shows only the demo user's token (pdfsig answers one password prompt).
    pub single_token_config: PathBuf,
    /// One per key: held while a client holds that credential's one-time code, so that codes are used in
    /// the order they were issued and an SMS code is not replaced by the next request's.
    locks: Vec<Mutex<()>>,
    /// The newest TOTP step handed out or possibly used per credential, by the suite's passcodes and by
    /// the prompt rows' `csc-server demo-otp` alike (the service refuses a step not newer than the last
    /// one it accepted).
    totp_steps: Mutex<HashMap<String, u64>>,
    csc: CscClient,
}

impl Env {
    pub fn start(work: PathBuf) -> Env {
        let svc = Service::start_fresh_init_serve(
            &["--totp-period", &TOTP_PERIOD.to_string()],
            // One client's wrong code must not lock the credential for every later row: the failing row
            // already shows the fault.
            &["--max-attempts", "50"],
        );
        let module = module_path();
        let token = svc.demo.token_of(USER).clone();

        let setup = work.join("setup");
        std::fs::create_dir_all(&setup).expect("create work dir");
        let tool = |args: &[&str]| {
            Cmd::new("pkcs11-tool")
                .arg("--module")
                .arg(&module)
                .args(args)
                .env("CLOUDTOKEN_CONFIG", svc.config_file())
                .run(&setup)
                .ok()
                .unwrap_or_else(|e| panic!("interop setup: {e}"))
        };
        let listing = tool(&[
            "--token-label",
            &token.label,
            "--login",
            "--pin",
            &token.pin,
            "--list-objects",
            "--type",
            "privkey",
        ])
        .stdout;
        let private = parse_objects(&listing);

        let mut keys = Vec::new();
        for cred in &token.credentials {
            // Approval credentials take no code at the PIN prompt: the user approves on the approval
            // page (tests/approval.rs, tests/pkcs11_approval.rs), which these clients cannot drive.
            if cred.otp == "approval" {
                continue;
            }
            // TLS login credentials (clientAuth certificates) are not for documents: NSS refuses
            // them for CMS and PDF signatures. They are for logging in to web sites (issue 12).
            if cred.usage == "authentication" {
                continue;
            }
            let obj = private
                .iter()
                .find(|o| o.label == cred.label)
                .unwrap_or_else(|| panic!("no private key labelled {:?}:\n{listing}", cred.label));
            let cert_der_path = setup.join(format!("{}.der", cred.id));
            let cert_pem = setup.join(format!("{}.pem", cred.id));
            tool(&[
                "--token-label",
                &token.label,
                "--read-object",
                "--type",
                "cert",
                "--id",
                &obj.id,
                "--output-file",
                cert_der_path.to_str().unwrap(),
            ]);
            openssl(
                &setup,
                &["x509", "-inform", "DER", "-in"],
                &cert_der_path,
                &cert_pem,
            );
            // The certificate the module shows must be the one the demo CA issued for this credential.
            let verified = Cmd::new("openssl")
                .arg("verify")
                .arg("-CAfile")
                .arg(svc.ca_file())
                .arg(&cert_pem)
                .run(&setup);
            assert!(verified.success(), "interop setup: {}", verified.describe());
            let (is_rsa, hash) = match cred.key.as_str() {
                "rsa-2048" => (true, Hash::Sha256),
                "rsa-3072" => (true, Hash::Sha384),
                "ec-p256" => (false, Hash::Sha256),
                "ec-p384" => (false, Hash::Sha384),
                other => panic!("unknown demo key type {other}"),
            };
            keys.push(Key {
                cred: cred.clone(),
                token: token.label.clone(),
                user: token.user.clone(),
                pin: token.pin.clone(),
                label: cred.label.clone(),
                id: obj.id.clone(),
                cert_der: std::fs::read(&cert_der_path).expect("read certificate"),
                cert_pem,
                is_rsa,
                hash,
                mechanisms: obj.mechanisms.clone(),
            });
        }
        for kind in ["rsa-2048", "rsa-3072", "ec-p256", "ec-p384"] {
            assert!(
                keys.iter().any(|k| k.cred.key == kind),
                "the demo token {} has no {kind} credential",
                token.label
            );
        }

        let single_token_config = work.join("single-token.toml");
        write_token_config(
            &svc.config_file(),
            &token.label,
            None,
            true,
            &single_token_config,
        );

        let mut config = ClientConfig::new(svc.url.clone());
        config.ca_file = Some(svc.ca_file());
        config.api_version = ApiVersion::Auto;
        let csc = CscClient::new(&config).expect("CSC client for sending SMS codes");

        Env {
            locks: keys.iter().map(|_| Mutex::new(())).collect(),
            totp_steps: Mutex::new(HashMap::new()),
            svc,
            module,
            work,
            keys,
            single_token_config,
            csc,
        }
    }

    pub fn lock(&self, key: usize) -> parking_lot::MutexGuard<'_, ()> {
        self.locks[key].lock()
    }

    /// What the user types at the PIN prompt: PIN immediately followed by a fresh one-time code for
    /// this credential. The caller holds the key's lock until the client has used it.
    pub fn passcode(&self, key: &Key) -> Result<String, String> {
        let otp = if key.uses_sms() {
            self.sms_code(key)?
        } else {
            self.totp_code(key)
        };
        Ok(format!("{}{}", key.pin, otp))
    }

    /// Before a row whose module asks the test prompt for the code: waits until the current TOTP step
    /// (the one `csc-server demo-otp` answers) is newer than every step handed out for the credential.
    pub fn before_prompted_code(&self, key: &Key) {
        let Some(period) = self.totp_period(key) else {
            return;
        };
        loop {
            let step = now_secs() / period;
            if self
                .totp_steps
                .lock()
                .get(&key.cred.id)
                .is_none_or(|&last| step > last)
            {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// After such a row: the prompt may have answered any step up to the current one, so later codes
    /// must be newer.
    pub fn after_prompted_code(&self, key: &Key) {
        let Some(period) = self.totp_period(key) else {
            return;
        };
        let step = now_secs() / period;
        let mut steps = self.totp_steps.lock();
        let last = steps.entry(key.cred.id.clone()).or_insert(step);
        *last = (*last).max(step);
    }

    fn totp_period(&self, key: &Key) -> Option<u64> {
        key.cred
            .totp_secret
            .as_ref()
            .map(|_| key.cred.totp_period.unwrap_or(30))
    }

    /// The module configuration of a row in `mode` (`login-free`, `protected-path`): the demo
    /// configuration with the demo user's token switched to that mode, its PIN and one-time codes asked
    /// through the shipped test prompt answering from `prompt_dir`. `single` keeps only that token.
    pub fn mode_config(&self, mode: &str, prompt_dir: &Path, single: bool, out: &Path) {
        let prompt = workspace_root().join("examples/prompt/test-prompt.sh");
        let mut extra = toml::Table::new();
        extra.insert("mode".into(), mode.into());
        extra.insert(
            "prompt_command".into(),
            toml::Value::Array(vec![
                prompt.display().to_string().into(),
                prompt_dir.display().to_string().into(),
            ]),
        );
        // Only the prompt: a row passes only if the module got the code from it.
        extra.insert(
            "otp_channels".into(),
            toml::Value::Array(vec!["prompt".into()]),
        );
        // Below the client deadline, so that a prompt that never answers shows as the module's error.
        extra.insert("prompt_timeout_ms".into(), toml::Value::Integer(60_000));
        write_token_config(
            &self.svc.config_file(),
            &self.keys[0].token,
            Some(extra),
            single,
            out,
        );
    }

    /// Prepares `dir` as the test prompt's folder (see examples/prompt/test-prompt.sh): the user's PIN,
    /// the service's state folder and the `csc-server` binary for `demo-otp`.
    pub fn prompt_dir(&self, dir: &Path) {
        use std::os::unix::fs::PermissionsExt;
        std::fs::create_dir_all(dir).expect("create prompt dir");
        // It holds the PIN.
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .expect("chmod prompt dir");
        write_private(&dir.join("pin"), &format!("{}\n", self.keys[0].pin));
        write_private(
            &dir.join("state"),
            &format!("{}\n", self.svc.state.display()),
        );
        write_private(
            &dir.join("csc-server"),
            &format!("{}\n", support::csc_server_bin().display()),
        );
    }

    /// A code for the step after the current one: the service accepts one step of drift, so the code
    /// stays valid for two more periods, and it is newer than every code handed out before.
    fn totp_code(&self, key: &Key) -> String {
        let cred = &key.cred;
        let secret = cred
            .totp_secret
            .as_ref()
            .expect("TOTP credential has a secret");
        let period = cred.totp_period.unwrap_or(30);
        loop {
            let step = now_secs() / period + 1;
            let mut steps = self.totp_steps.lock();
            if steps.get(&cred.id).is_none_or(|&last| step > last) {
                steps.insert(cred.id.clone(), step);
                return support::totp::code_at(secret, period, step);
            }
            drop(steps);
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Asks the service to text a code, as the user's "send me a code" button would, and reads it from
    /// the outbox.
    fn sms_code(&self, key: &Key) -> Result<String, String> {
        let seen = self.svc.sms_messages(&key.cred.id).len();
        let refresh = Secret::new(self.svc.refresh_token(&key.user));
        let access = self
            .csc
            .refresh(&refresh)
            .map_err(|e| format!("refresh {}'s access token: {e}", key.user))?
            .access_token;
        self.csc
            .send_otp(&access, &key.cred.id)
            .map_err(|e| format!("sendOTP for {}: {e}", key.cred.id))?;
        Ok(self.svc.wait_sms_code(&key.cred.id, seen))
    }
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

/// Writes `data` to a new file readable by the owner only (the module refuses a configuration others
/// can read; the prompt's files hold the PIN).
pub fn write_private(path: &Path, data: &str) {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let _ = std::fs::remove_file(path);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .unwrap_or_else(|e| panic!("create {}: {e}", path.display()));
    f.write_all(data.as_bytes())
        .unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}

fn openssl(dir: &Path, args: &[&str], input: &Path, output: &Path) {
    let out = Cmd::new("openssl")
        .args(args)
        .arg(input)
        .arg("-out")
        .arg(output)
        .run(dir);
    assert!(out.success(), "interop setup: {}", out.describe());
}

/// The module configuration `csc-server init` wrote, with `extra` keys set on the token `label` and,
/// when `single`, reduced to that token.
fn write_token_config(
    full: &Path,
    label: &str,
    extra: Option<toml::Table>,
    single: bool,
    out: &Path,
) {
    let mut doc: toml::Table = std::fs::read_to_string(full)
        .expect("read cloudtoken.toml")
        .parse()
        .expect("parse cloudtoken.toml");
    let tokens = doc
        .get_mut("token")
        .and_then(|t| t.as_array_mut())
        .expect("cloudtoken.toml has [[token]] entries");
    let is_ours = |t: &toml::Value| t.get("label").and_then(|l| l.as_str()) == Some(label);
    if single {
        tokens.retain(is_ours);
    }
    let mut ours = tokens.iter_mut().filter(|t| is_ours(t));
    let token = ours
        .next()
        .and_then(|t| t.as_table_mut())
        .unwrap_or_else(|| panic!("cloudtoken.toml has no token labelled {label}"));
    token.extend(extra.unwrap_or_default());
    assert!(
        ours.next().is_none(),
        "cloudtoken.toml has one token labelled {label}"
    );
    write_private(out, &toml::to_string(&doc).expect("encode configuration"));
}
