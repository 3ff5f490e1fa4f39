//! Signs a file with a credential of the reference csc-server, using only this crate.
//!
//! ```text
//! cargo run --release -p remote-client --example csc_sign -- \
//!     --state DIR --credential alice-p256 --in FILE --out SIG [--api v1|v2|auto]
//! openssl dgst -sha256 -verify <(openssl x509 -in SIG.cert.pem -pubkey -noout) -signature SIG FILE
//! ```
//!
//! It reads `DIR/server.url`, `DIR/ca.pem` and `DIR/demo.json`, logs in with `DIR/<user>.refresh`,
//! hashes FILE with SHA-256 locally, takes the second factor from demo.json (TOTP) or the SMS outbox,
//! authorizes that one hash, signs it, and writes the signature (DER for ECDSA) and the certificate.

use base64::Engine;
use remote_client::*;
use sha2::Digest;
use std::error::Error as StdError;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

type AnyResult<T> = std::result::Result<T, Box<dyn StdError>>;

struct Args {
    state: PathBuf,
    credential: String,
    input: PathBuf,
    output: PathBuf,
    api: ApiVersion,
}

fn parse_args() -> AnyResult<Args> {
    let usage =
        "usage: csc_sign --state DIR --credential ID --in FILE --out SIG [--api v1|v2|auto]";
    let mut it = std::env::args().skip(1);
    let (mut state, mut credential, mut input, mut output) = (None, None, None, None);
    let mut api = ApiVersion::Auto;
    while let Some(flag) = it.next() {
        let value = it.next().ok_or(usage)?;
        match flag.as_str() {
            "--state" => state = Some(PathBuf::from(value)),
            "--credential" => credential = Some(value),
            "--in" => input = Some(PathBuf::from(value)),
            "--out" => output = Some(PathBuf::from(value)),
            "--api" => {
                api = match value.as_str() {
                    "v1" => ApiVersion::V1,
                    "v2" => ApiVersion::V2,
                    "auto" => ApiVersion::Auto,
                    _ => return Err(usage.into()),
                }
            }
            _ => return Err(usage.into()),
        }
    }
    Ok(Args {
        state: state.ok_or(usage)?,
        credential: credential.ok_or(usage)?,
        input: input.ok_or(usage)?,
        output: output.ok_or(usage)?,
        api,
    })
}

/// The parts of demo.json this example needs.
struct DemoCredential {
    user: String,
    pin: String,
    otp: String,
    totp_secret: Option<String>,
    totp_period: u64,
}

fn demo_credential(state: &Path, id: &str) -> AnyResult<DemoCredential> {
    let demo: serde_json::Value = serde_json::from_slice(&std::fs::read(state.join("demo.json"))?)?;
    for token in demo["tokens"].as_array().into_iter().flatten() {
        for c in token["credentials"].as_array().into_iter().flatten() {
            if c["id"] == id {
                let text = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_owned();
                return Ok(DemoCredential {
                    user: text(&token["user"]),
                    pin: text(&token["pin"]),
                    otp: text(&c["otp"]),
                    totp_secret: c["totp_secret"].as_str().map(str::to_owned),
                    totp_period: c["totp_period"].as_u64().unwrap_or(30),
                });
            }
        }
    }
    Err(format!("{id} is not in demo.json").into())
}

fn totp(secret: &str, period: u64, at: u64) -> AnyResult<String> {
    let bytes = totp_rs::Secret::Encoded(secret.to_owned())
        .to_bytes()
        .map_err(|e| format!("TOTP secret: {e:?}"))?;
    Ok(totp_rs::TOTP::new_unchecked(totp_rs::Algorithm::SHA1, 6, 1, period, bytes).generate(at))
}

fn sms_lines(state: &Path, id: &str) -> Vec<serde_json::Value> {
    std::fs::read_to_string(state.join("sms-outbox.jsonl"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["credential"] == id)
        .collect()
}

/// Asks the service for an SMS and reads the code from the outbox, as a phone would.
fn sms_code(c: &CscClient, at: &Secret, state: &Path, id: &str) -> AnyResult<Secret> {
    let seen = sms_lines(state, id).len();
    c.send_otp_with_description(at, id, Some("csc_sign example"))?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        let lines = sms_lines(state, id);
        if lines.len() > seen {
            let code = lines
                .last()
                .and_then(|l| l["code"].as_str())
                .ok_or("SMS without a code")?;
            return Ok(Secret::new(code));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Err("no SMS arrived".into())
}

fn main() {
    env_logger::init();
    if let Err(e) = run() {
        match e.downcast_ref::<Error>() {
            Some(csc) => eprintln!("csc_sign: {csc} ({:?})", csc.reason()),
            None => eprintln!("csc_sign: {e}"),
        }
        std::process::exit(1);
    }
}

fn run() -> AnyResult<()> {
    let args = parse_args()?;
    let demo = demo_credential(&args.state, &args.credential)?;
    let url = std::fs::read_to_string(args.state.join("server.url"))?;
    let mut config = ClientConfig::new(url.trim());
    config.ca_file = Some(args.state.join("ca.pem"));
    config.api_version = args.api;
    let c = CscClient::new(&config)?;
    println!("service {} speaks CSC {:?}", url.trim(), c.api_version()?);

    let refresh = std::fs::read_to_string(args.state.join(format!("{}.refresh", demo.user)))?;
    let at = c.refresh(&Secret::new(refresh.trim()))?.access_token;
    let info = c.credential_info(&at, &args.credential)?;
    let cert = info
        .certificates
        .first()
        .ok_or("the credential has no certificate")?;
    let sign_algo = if info.key.curve.is_some() {
        oid::ECDSA_WITH_SHA256
    } else {
        oid::SHA256_WITH_RSA
    };

    let digest = sha2::Sha256::digest(std::fs::read(&args.input)?).to_vec();
    let pin = Secret::new(demo.pin);
    let mut request = AuthorizeRequest {
        credential_id: args.credential.clone(),
        num_signatures: 1,
        hashes: vec![digest.clone()],
        hash_algorithm_oid: Some(oid::SHA256.into()),
        pin: Some(pin),
        otp: None,
        description: Some(format!("csc_sign {}", args.input.display())),
        client_data: None,
    };
    let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
    let sad = match (demo.otp.as_str(), demo.totp_secret.as_deref()) {
        ("totp", Some(secret)) => {
            request.otp = Some(Secret::new(totp(secret, demo.totp_period, now)?));
            match c.authorize(&at, &request) {
                // This time step's code was used already (the service refuses replays): wait for
                // the next one.
                Err(e) if e.reason() == Reason::OtpIncorrect => {
                    let next = (now / demo.totp_period + 1) * demo.totp_period;
                    println!("TOTP code already used; waiting for the next one");
                    std::thread::sleep(Duration::from_secs(next.saturating_sub(now)));
                    request.otp = Some(Secret::new(totp(secret, demo.totp_period, next)?));
                    c.authorize(&at, &request)?
                }
                other => other?,
            }
        }
        ("sms", _) => {
            request.otp = Some(sms_code(&c, &at, &args.state, &args.credential)?);
            c.authorize(&at, &request)?
        }
        (kind, _) => return Err(format!("unsupported OTP kind {kind:?}").into()),
    };
    let Authorization::Granted(sad) = sad else {
        return Err("the service wants out-of-band approval; this example does not poll".into());
    };

    let signatures = c.sign_hash(
        &at,
        &SignHashRequest {
            credential_id: args.credential.clone(),
            sad: sad.value,
            hashes: vec![digest],
            hash_algorithm_oid: oid::SHA256.into(),
            sign_algorithm_oid: sign_algo.into(),
            sign_algorithm_params: None,
        },
    )?;
    std::fs::write(&args.output, &signatures[0])?;
    let b64 = base64::engine::general_purpose::STANDARD.encode(cert);
    let mut pem = String::from("-----BEGIN CERTIFICATE-----\n");
    for line in b64.as_bytes().chunks(64) {
        pem.push_str(std::str::from_utf8(line)?);
        pem.push('\n');
    }
    pem.push_str("-----END CERTIFICATE-----\n");
    let mut cert_path = args.output.clone().into_os_string();
    cert_path.push(".cert.pem");
    std::fs::write(&cert_path, pem)?;
    println!(
        "signed {} with {}: signature {}, certificate {}",
        args.input.display(),
        args.credential,
        args.output.display(),
        Path::new(&cert_path).display()
    );
    Ok(())
}
