//! The configuration rules, one test per rule: defaults, relative paths, refusals, the example file.

use super::files::read_secret_file;
use super::*;
use std::os::unix::fs::PermissionsExt;

fn write(dir: &Path, name: &str, text: &str, mode: u32) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
    p
}

fn minimal(secret: &str) -> String {
    format!(
        "[[token]]\nlabel = \"A\"\nurl = \"https://h\"\naccount = \"a\"\nrefresh_token_file = \"{secret}\"\n"
    )
}

#[test]
fn loads_defaults_and_resolves_relative_paths() {
    let d = tempfile_dir();
    write(d.path(), "a.refresh", "tok\n", 0o600);
    let p = write(d.path(), "c.toml", &minimal("a.refresh"), 0o600);
    let c = load_file(&p).unwrap();
    assert_eq!(c.tokens.len(), 1);
    let t = &c.tokens[0];
    assert_eq!(
        t.refresh_token_file.as_deref(),
        Some(d.path().join("a.refresh").as_path())
    );
    assert_eq!(t.otp_length, 6);
    assert_eq!(t.batch_size, 30);
    assert_eq!(t.api, Api::Auto);
    assert!(t.has_channel(OtpChannel::Passcode) && t.has_channel(OtpChannel::Context));
    assert!(!t.always_authenticate);
    assert_eq!(
        read_secret_file(t.refresh_token_file.as_ref().unwrap())
            .unwrap()
            .expose(),
        "tok"
    );
}

#[test]
fn refuses_group_writable_config_and_readable_secret() {
    let d = tempfile_dir();
    write(d.path(), "a.refresh", "tok\n", 0o600);
    let p = write(d.path(), "c.toml", &minimal("a.refresh"), 0o664);
    assert!(load_file(&p).unwrap_err().to_string().contains("writable"));
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
    assert!(load_file(&p).is_ok());
    std::fs::set_permissions(
        d.path().join("a.refresh"),
        std::fs::Permissions::from_mode(0o640),
    )
    .unwrap();
    assert!(load_file(&p).unwrap_err().to_string().contains("chmod 600"));
}

#[test]
fn refuses_unknown_keys_and_bad_values() {
    let d = tempfile_dir();
    write(d.path(), "a.refresh", "tok\n", 0o600);
    let base = minimal("a.refresh");
    for (extra, needle) in [
        ("colour = 1\n", "unknown field"),
        ("otp_length = 0\n", "otp_length"),
        ("batch_size = 0\n", "batch_size"),
        ("url_file = \"u\"\n", "exactly one of url"),
        (
            "password_file = \"a.refresh\"\n",
            "exactly one of refresh_token_file",
        ),
        ("otp_channels = [\"sms\"]\n", "unknown variant"),
    ] {
        let p = write(d.path(), "c.toml", &format!("{base}{extra}"), 0o600);
        let e = load_file(&p).unwrap_err().to_string();
        assert!(e.contains(needle), "{extra:?}: {e}");
    }
    let two = format!("{base}{}", base.replace("\"A\"", "\"B\""))
        .replace("label = \"B\"", "label = \"B\"\nslot_id = 0");
    let p = write(d.path(), "c.toml", &two, 0o600);
    assert!(load_file(&p)
        .unwrap_err()
        .to_string()
        .contains("slot_id 0 used twice"));
}

fn executable(dir: &Path, name: &str, mode: u32) -> PathBuf {
    write(dir, name, "#!/bin/sh\necho 1\n", mode)
}

#[test]
fn second_factor_defaults_and_channel_order() {
    let d = tempfile_dir();
    write(d.path(), "a.refresh", "tok\n", 0o600);
    let p = write(d.path(), "c.toml", &minimal("a.refresh"), 0o600);
    let t = load_file(&p).unwrap().tokens.remove(0);
    assert_eq!(t.mode, TokenMode::Pin);
    assert_eq!(
        (
            t.prompt_timeout_ms,
            t.prompt_attempts,
            t.totp_period,
            t.approval_timeout_ms
        ),
        (120_000, 3, 30, 120_000)
    );
    // Channels that are not set up are left out of the default order.
    assert_eq!(t.channels(), [OtpChannel::Passcode, OtpChannel::Context]);

    executable(d.path(), "ask.sh", 0o755);
    write(
        d.path(),
        "totp",
        "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ\n",
        0o600,
    );
    write(d.path(), "pin", "123456\n", 0o600);
    let text = format!(
        "{}mode = \"login-free\"\nprompt_command = [\"./ask.sh\", \"--desktop\"]\n\
         totp_secret_file = \"totp\"\npin_file = \"pin\"\n",
        minimal("a.refresh")
    );
    let p = write(d.path(), "c.toml", &text, 0o600);
    let t = load_file(&p).unwrap().tokens.remove(0);
    assert_eq!(t.mode, TokenMode::LoginFree);
    assert_eq!(
        t.channels(),
        [
            OtpChannel::Passcode,
            OtpChannel::Context,
            OtpChannel::TotpFile,
            OtpChannel::Prompt
        ]
    );
    let program = d.path().join("ask.sh").display().to_string();
    assert_eq!(
        t.prompt_command.as_deref(),
        Some(&[program, "--desktop".to_owned()][..])
    );
    assert_eq!(t.pin_file.as_deref(), Some(d.path().join("pin").as_path()));

    // An explicit order is kept as given.
    let text = format!("{text}otp_channels = [\"prompt\", \"passcode\"]\n");
    let p = write(d.path(), "c.toml", &text, 0o600);
    let t = load_file(&p).unwrap().tokens.remove(0);
    assert_eq!(t.channels(), [OtpChannel::Prompt, OtpChannel::Passcode]);
}

#[test]
fn refuses_unsafe_or_incomplete_second_factor_settings() {
    let d = tempfile_dir();
    write(d.path(), "a.refresh", "tok\n", 0o600);
    executable(d.path(), "ask.sh", 0o755);
    executable(d.path(), "open.sh", 0o777);
    write(d.path(), "plain", "x\n", 0o644);
    write(d.path(), "loose", "123456\n", 0o644);
    let base = minimal("a.refresh");
    for (extra, needle) in [
        ("otp_channels = [\"prompt\"]\n", "prompt_command is not set"),
        (
            "otp_channels = [\"totp-file\"]\n",
            "totp_secret_file is not set",
        ),
        ("otp_channels = []\n", "otp_channels is empty"),
        ("mode = \"pinless\"\n", "unknown variant"),
        (
            "prompt_command = [\"zenity\"]\n",
            "not a name looked up in PATH",
        ),
        ("prompt_command = []\n", "prompt_command is empty"),
        (
            "prompt_command = [\"./open.sh\"]\n",
            "writable by group or others",
        ),
        ("prompt_command = [\"./plain\"]\n", "not an executable file"),
        ("prompt_command = [\"./missing.sh\"]\n", "missing.sh"),
        ("pin_file = \"loose\"\n", "chmod 600"),
        ("totp_secret_file = \"missing\"\n", "missing"),
        ("totp_credential = \"c\"\n", "needs totp_secret_file"),
        ("prompt_attempts = 0\n", "prompt_attempts"),
        ("totp_period = 0\n", "totp_period"),
        ("prompt_timeout_ms = 0\n", "timeouts must be positive"),
        ("approval_timeout_ms = 0\n", "timeouts must be positive"),
        ("openssl_path = \"openssl\"\n", "openssl_path"),
        (
            "openssl_path = \"./open.sh\"\n",
            "writable by group or others",
        ),
    ] {
        let p = write(d.path(), "c.toml", &format!("{base}{extra}"), 0o600);
        let e = load_file(&p).unwrap_err().to_string();
        assert!(e.contains(needle), "{extra:?}: {e}");
    }
    let p = write(
        d.path(),
        "c.toml",
        &format!("{base}mode = \"protected-path\"\nprompt_command = [\"./ask.sh\"]\n"),
        0o600,
    );
    assert_eq!(
        load_file(&p).unwrap().tokens[0].mode,
        TokenMode::ProtectedPath
    );
}

fn dss_minimal() -> String {
    "[[token]]\nlabel = \"Seal\"\nprotocol = \"globalsign-dss\"\nurl = \"https://h/v2\"\n\
     client_cert = \"c.pem\"\nclient_key = \"c.key\"\napi_key = \"e510e289e6cd8947\"\n\
     api_secret_file = \"dss.secret\"\nmode = \"login-free\"\n"
        .to_owned()
}

#[test]
fn globalsign_dss_tokens_take_their_own_keys() {
    let d = tempfile_dir();
    write(
        d.path(),
        "dss.secret",
        "a477a8393d17a55ecb2ba6a61f58feb84770b621\n",
        0o600,
    );
    write(d.path(), "a.refresh", "tok\n", 0o600);
    let p = write(
        d.path(),
        "c.toml",
        &format!(
            "{}subject_dn = {{ common_name = \"ACME\", organization_unit = [\"Billing\"] }}\n",
            dss_minimal()
        ),
        0o600,
    );
    let c = load_file(&p).unwrap();
    let t = &c.tokens[0];
    assert_eq!(t.protocol, Protocol::GlobalsignDss);
    assert_eq!(
        t.api_secret_file.as_deref(),
        Some(d.path().join("dss.secret").as_path())
    );
    assert_eq!(t.identity_renew_before_s, 300);
    assert_eq!(t.session_lifetime_s, 600);
    assert!(t.identity_cache);
    assert_eq!(
        t.subject_dn.as_ref().unwrap().common_name.as_deref(),
        Some("ACME")
    );
    let base = dss_minimal();
    for (edit, needle) in [
        (
            base.replace("mode = \"login-free\"\n", ""),
            "set mode = \"login-free\"",
        ),
        (
            base.replace("client_cert = \"c.pem\"\nclient_key = \"c.key\"\n", ""),
            "needs client_cert and client_key",
        ),
        (
            base.replace("api_key = \"e510e289e6cd8947\"\n", ""),
            "api_key is missing",
        ),
        (base.replace("e510e289e6cd8947", "e510 e289"), "blanks"),
        (
            base.replace("api_secret_file = \"dss.secret\"\n", ""),
            "api_secret_file is missing",
        ),
        (
            base.replace("dss.secret", "missing.secret"),
            "missing.secret",
        ),
        (
            format!("{base}account = \"alice\"\n"),
            "account is not a key of protocol \"globalsign-dss\"",
        ),
        (
            format!("{base}refresh_token_file = \"a.refresh\"\n"),
            "refresh_token_file is not a key of protocol \"globalsign-dss\"",
        ),
        (
            format!("{base}pin_file = \"a.refresh\"\n"),
            "pin_file is not a key",
        ),
        (
            format!("{base}dss_sts = \"STS\"\n"),
            "dss_sts is a key of protocol \"cryptopro-dss\", not of \"globalsign-dss\"",
        ),
        (
            format!("{base}service_auth = \"api-key\"\n"),
            "service_auth is not a key of protocol \"globalsign-dss\"",
        ),
        (
            format!("{base}api_key_file = \"a.refresh\"\n"),
            "api_key_file is not a key of protocol \"globalsign-dss\"",
        ),
        (
            format!("{base}authorize_timeout_ms = 5000\n"),
            "authorize_timeout_ms is not a key of protocol \"globalsign-dss\"",
        ),
        (
            format!("{base}identity_renew_before_s = 0\n"),
            "identity_renew_before_s",
        ),
        (
            format!("{base}session_lifetime_s = 1\n"),
            "session_lifetime_s",
        ),
        (
            format!("{base}subject_dn = {{ cn = \"x\" }}\n"),
            "unknown field",
        ),
        (
            format!("{}api_key = \"k\"\n", minimal("a.refresh")),
            "api_key is a key of protocol \"globalsign-dss\"",
        ),
    ] {
        let p = write(d.path(), "c.toml", &edit, 0o600);
        let e = load_file(&p).unwrap_err().to_string();
        assert!(e.contains(needle), "{edit:?}: {e}");
    }
}

/// CryptoPro DSS tokens: their keys, defaults, and refusals.
#[test]
fn cryptopro_dss_tokens() {
    let d = tempfile_dir();
    write(d.path(), "a.refresh", "tok\n", 0o600);
    write(d.path(), "a.password", "pw\n", 0o600);
    let dss = minimal("a.refresh")
        .replace(
            "[[token]]\n",
            "[[token]]\nprotocol = \"cryptopro-dss\"\nclient_id = \"cloudtoken\"\nmode = \"login-free\"\n",
        )
        .replace(
            "refresh_token_file = \"a.refresh\"",
            "service_auth = \"oauth2-password\"\npassword_file = \"a.password\"",
        );
    let p = write(d.path(), "c.toml", &dss, 0o600);
    let t = load_file(&p).unwrap().tokens.remove(0);
    assert_eq!(t.protocol, Protocol::CryptoproDss);
    // No PIN source needed: the user confirms out of band.
    assert_eq!(t.mode, TokenMode::LoginFree);
    assert_eq!(t.dss_confirmation, None);
    assert_eq!(t.oauth2_scope(), "dss");
    for (extra, needle) in [
        ("dss_confirmation = \"sometimes\"\n", "unknown variant"),
        ("dss_sts = \"STS/oauth\"\n", "application names, not paths"),
        ("client_secret_file = \"missing\"\n", "missing"),
        (
            "oauth2_authorize_url = \"https://h/a\"\n",
            "not used with protocol",
        ),
    ] {
        let p = write(d.path(), "c.toml", &format!("{dss}{extra}"), 0o600);
        let e = load_file(&p).unwrap_err().to_string();
        assert!(e.contains(needle), "{extra:?}: {e}");
    }
    let session = format!("{dss}dss_confirmation = \"session\"\n");
    let p = write(d.path(), "c.toml", &session, 0o600);
    let t = load_file(&p).unwrap().tokens.remove(0);
    assert_eq!(t.dss_confirmation, Some(DssConfirmation::Session));
    // An authorization-code enrolment's refresh token: no password, so no session confirmation.
    let code = dss.replace(
        "service_auth = \"oauth2-password\"\npassword_file = \"a.password\"",
        "service_auth = \"oauth2-code\"\nrefresh_token_file = \"a.refresh\"",
    );
    let p = write(d.path(), "c.toml", &code, 0o600);
    load_file(&p).unwrap();
    let p = write(
        d.path(),
        "c.toml",
        &format!("{code}dss_confirmation = \"session\"\n"),
        0o600,
    );
    let e = load_file(&p).unwrap_err().to_string();
    assert!(e.contains("set password_file"), "{e}");

    let no_client = dss.replace("client_id = \"cloudtoken\"\n", "");
    let p = write(d.path(), "c.toml", &no_client, 0o600);
    let e = load_file(&p).unwrap_err().to_string();
    assert!(e.contains("needs client_id"), "{e}");
    // CSC's `auth/login` is not a way into DSS.
    let login = format!("{}protocol = \"cryptopro-dss\"\n", minimal("a.refresh"));
    let p = write(d.path(), "c.toml", &login, 0o600);
    let e = load_file(&p).unwrap_err().to_string();
    assert!(e.contains("signs in with OAuth 2.0"), "{e}");
    // A CSC token refuses the settings of CryptoPro DSS rather than ignore them.
    let csc = format!("{}dss_signserver = \"SignServer\"\n", minimal("a.refresh"));
    let p = write(d.path(), "c.toml", &csc, 0o600);
    let e = load_file(&p).unwrap_err().to_string();
    assert!(
        e.contains("dss_signserver is a key of protocol \"cryptopro-dss\""),
        "{e}"
    );
    let p = write(d.path(), "c.toml", &minimal("a.refresh"), 0o600);
    assert_eq!(load_file(&p).unwrap().tokens[0].oauth2_scope(), "service");
}

/// Every key the example documents, commented out or not, is one the module accepts.
#[test]
fn example_file_documents_accepted_keys() {
    let example = include_str!("../../../examples/cloudtoken.example.toml");
    let uncommented: String = example
        .lines()
        .map(|l| {
            let rest = l.trim_start().strip_prefix("# ").unwrap_or("");
            let key = rest.split('=').next().unwrap_or("").trim();
            let is_setting = rest.contains(" = ")
                && !key.is_empty()
                && key.chars().all(|c| c.is_ascii_lowercase() || c == '_');
            if is_setting {
                rest.split("  #").next().unwrap().to_owned()
            } else {
                l.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    assert!(uncommented.contains("always_authenticate = false"));
    let parsed: FileFormat = toml::from_str(&uncommented).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(parsed.token.len(), 1);
    assert!(parsed.token[0].password_file.is_some() && parsed.token[0].client_key.is_some());
    let t = &parsed.token[0];
    assert!(t.prompt_command.is_some() && t.totp_secret_file.is_some() && t.pin_file.is_some());
    assert!(t.otp_channels.as_deref() == Some(&DEFAULT_CHANNELS[..]));
    assert!(parsed.log.file.is_some());
    assert!(t.api_key.is_some() && t.api_secret_file.is_some() && t.identity_cache);
    let subject = t
        .subject_dn
        .as_ref()
        .expect("the example documents subject_dn");
    assert_eq!(subject.organization_unit, vec!["Billing".to_owned()]);
}

fn tempfile_dir() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

#[test]
fn login_free_and_protected_path_tokens_need_no_pin_source_for_implicit_credentials() {
    // Whether a PIN is needed is the credentials' to say (an implicit credential needs none); a token
    // without pin_file or prompt that meets one that does is refused at signing, with a log line.
    let d = tempfile_dir();
    write(d.path(), "a.refresh", "tok\n", 0o600);
    for mode in ["login-free", "protected-path"] {
        let text = format!("{}mode = \"{mode}\"\n", minimal("a.refresh"));
        let p = write(d.path(), "c.toml", &text, 0o600);
        assert!(load_file(&p).is_ok(), "{mode}");
    }
}

/// A token's first lines, without a sign-in.
fn service(extra: &str) -> String {
    format!("[[token]]\nlabel = \"A\"\nurl = \"https://h\"\n{extra}")
}

#[test]
fn each_service_auth_takes_exactly_its_keys() {
    let d = tempfile_dir();
    for f in ["s.refresh", "s.password", "s.token", "s.key", "s.client"] {
        write(d.path(), f, "secret\n", 0o600);
    }
    let accepted = [
        "service_auth = \"none\"\n",
        "service_auth = \"bearer\"\naccess_token_file = \"s.token\"\n",
        "service_auth = \"api-key\"\napi_key_file = \"s.key\"\napi_key_header = \"X-Key\"\n",
        "service_auth = \"oauth2-client\"\nclient_id = \"seal\"\nclient_secret_file = \"s.client\"\n\
         oauth2_token_url = \"https://idp/token\"\noauth2_scope = \"service\"\n",
        "service_auth = \"oauth2-password\"\nclient_id = \"app\"\naccount = \"alice\"\n\
         password_file = \"s.password\"\n",
        "service_auth = \"oauth2-code\"\nclient_id = \"app\"\nrefresh_token_file = \"s.refresh\"\n",
        "account = \"alice\"\nrefresh_token_file = \"s.refresh\"\n",
        // A client for the credentials authorized in the browser, with any sign-in.
        "service_auth = \"none\"\nclient_id = \"app\"\noauth2_authorize_url = \"https://idp/a\"\n",
        "account = \"alice\"\nrefresh_token_file = \"s.refresh\"\nclient_id = \"app\"\n\
         client_secret_file = \"s.client\"\n",
    ];
    for extra in accepted {
        let p = write(d.path(), "c.toml", &service(extra), 0o600);
        if let Err(e) = load_file(&p) {
            panic!("{extra:?}: {e}");
        }
    }
    let refused = [
        ("service_auth = \"bearer\"\n", "needs access_token_file"),
        ("service_auth = \"api-key\"\n", "needs api_key_file"),
        (
            "service_auth = \"oauth2-client\"\nclient_id = \"seal\"\n",
            "needs client_secret_file",
        ),
        (
            "service_auth = \"none\"\napi_key_file = \"s.key\"\n",
            "api_key_file is not used with service_auth \"none\"",
        ),
        (
            "service_auth = \"oauth2-password\"\nclient_id = \"app\"\npassword_file = \"s.password\"\n",
            "needs account",
        ),
        (
            "account = \"a\"\nrefresh_token_file = \"s.refresh\"\npassword_file = \"s.password\"\n",
            "exactly one of refresh_token_file and password_file",
        ),
        (
            "account = \"a\"\nrefresh_token_file = \"s.refresh\"\noauth2_token_url = \"https://x\"\n",
            "oauth2_token_url and oauth2_authorize_url need client_id",
        ),
        (
            "service_auth = \"none\"\nclient_secret_file = \"s.client\"\n",
            "client_secret_file needs client_id",
        ),
        ("service_auth = \"kerberos\"\n", "unknown variant"),
    ];
    for (extra, needle) in refused {
        let p = write(d.path(), "c.toml", &service(extra), 0o600);
        let e = load_file(&p).unwrap_err().to_string();
        assert!(e.contains(needle), "{extra:?}: {e}");
    }
    // api_base stands for url; both together are refused.
    let p = write(
        d.path(),
        "c.toml",
        "[[token]]\nlabel = \"A\"\napi_base = \"https://h/csc/v0\"\napi = \"v1\"\nservice_auth = \"none\"\n",
        0o600,
    );
    assert_eq!(
        load_file(&p).unwrap().tokens[0].api_base.as_deref(),
        Some("https://h/csc/v0")
    );
    let p = write(
        d.path(),
        "c.toml",
        &service("api_base = \"https://h/x\"\nservice_auth = \"none\"\n"),
        0o600,
    );
    assert!(load_file(&p)
        .unwrap_err()
        .to_string()
        .contains("exactly one of url, url_file and api_base"));
}
