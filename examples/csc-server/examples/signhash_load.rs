//! A bounded load generator for `signatures/signHash` against a running csc-server on loopback: each of
//! `--clients` clients (one keep-alive TLS connection each) first obtains SADs for its share of the
//! signatures (not timed: TOTP credentials wait for fresh time steps), then all clients sign at once and
//! the latency of every signHash and the throughput of the signing phase are printed.
//!
//! ```sh
//! cargo run --release -p csc-server --example signhash_load -- \
//!     --state /tmp/bench/state --credential seal-p256 --clients 8 --signatures 4000
//! ```
//!
//! It stops by itself after `--signatures` signatures (plus `--warmup` per client).

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde_json::{json, Value};
use sha2::Digest;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::{Barrier, Mutex};

const SHA256_WITH_RSA: &str = "1.2.840.113549.1.1.11";
const ECDSA_WITH_SHA256: &str = "1.2.840.10045.4.3.2";

struct Args {
    state: PathBuf,
    credential: String,
    clients: usize,
    signatures: usize,
    hashes: usize,
    warmup: usize,
    /// Time `info` instead: TLS, HTTP, JSON and the server's dispatch, without authentication,
    /// database or key.
    floor: bool,
}

fn usage() -> ! {
    eprintln!(
        "usage: signhash_load --state DIR --credential ID [--clients N] [--signatures TOTAL] \
         [--hashes PER_REQUEST] [--warmup PER_CLIENT] [--floor]"
    );
    std::process::exit(2)
}

fn parse_args() -> Args {
    let mut a = Args {
        state: PathBuf::new(),
        credential: String::new(),
        clients: 1,
        signatures: 2000,
        hashes: 1,
        warmup: 100,
        floor: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "--floor" {
            a.floor = true;
            continue;
        }
        let value = it.next().unwrap_or_else(|| usage());
        let number = || value.parse::<usize>().unwrap_or_else(|_| usage());
        match flag.as_str() {
            "--state" => a.state = PathBuf::from(&value),
            "--credential" => a.credential = value.clone(),
            "--clients" => a.clients = number().max(1),
            "--signatures" => a.signatures = number().max(1),
            "--hashes" => a.hashes = number().max(1),
            "--warmup" => a.warmup = number(),
            _ => usage(),
        }
    }
    if a.state.as_os_str().is_empty() || a.credential.is_empty() {
        usage()
    }
    a
}

/// What demo.json says about the credential and its user.
struct Target {
    user: String,
    password: String,
    pin: String,
    totp: Option<(Vec<u8>, u64)>,
    multisign: usize,
    sign_algo: &'static str,
}

fn target(demo: &Value, id: &str) -> Target {
    for t in demo["tokens"].as_array().expect("demo.json tokens") {
        for c in t["credentials"].as_array().expect("credentials") {
            if c["id"].as_str() != Some(id) {
                continue;
            }
            let totp = c["totp_secret"].as_str().map(|s| {
                let secret = totp_rs::Secret::Encoded(s.to_owned()).to_bytes().unwrap();
                (secret, c["totp_period"].as_u64().unwrap_or(30))
            });
            let key = c["key"].as_str().unwrap_or_default();
            return Target {
                user: t["user"].as_str().unwrap().to_owned(),
                password: t["password"].as_str().unwrap().to_owned(),
                pin: t["pin"].as_str().unwrap().to_owned(),
                totp,
                multisign: c["multisign"].as_u64().unwrap_or(1) as usize,
                sign_algo: if key.starts_with("rsa") {
                    SHA256_WITH_RSA
                } else {
                    ECDSA_WITH_SHA256
                },
            };
        }
    }
    panic!("no credential {id} in demo.json")
}

/// Hands out TOTP codes of strictly increasing time steps (the service refuses a replayed step).
struct Codes {
    last: Mutex<u64>,
}

impl Codes {
    async fn next(&self, secret: &[u8], period: u64) -> String {
        let totp =
            totp_rs::TOTP::new_unchecked(totp_rs::Algorithm::SHA1, 6, 1, period, secret.to_vec());
        loop {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_secs()
                / period;
            let mut last = self.last.lock().await;
            let step = (*last + 1).max(now);
            if step <= now + 1 {
                *last = step;
                return totp.generate(step * period);
            }
            drop(last);
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

struct Shared {
    url: String,
    target: Target,
    credential: String,
    access_token: String,
    codes: Codes,
    hashes: usize,
    floor: bool,
}

async fn try_post(
    http: &reqwest::Client,
    s: &Shared,
    method: &str,
    body: &Value,
) -> Result<Value, String> {
    let resp = http
        .post(format!("{}/csc/v2/{method}", s.url))
        .bearer_auth(&s.access_token)
        .json(body)
        .send()
        .await
        .map_err(|e| format!("{method}: {e}"))?;
    let status = resp.status();
    let v: Value = resp.json().await.unwrap_or(Value::Null);
    if status.is_success() {
        Ok(v)
    } else {
        Err(format!("{method}: {status} {v}"))
    }
}

async fn post(http: &reqwest::Client, s: &Shared, method: &str, body: Value) -> Value {
    try_post(http, s, method, &body)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}

/// SADs covering `count` signatures.
async fn authorize(http: &reqwest::Client, s: &Shared, count: usize) -> Vec<(String, usize)> {
    let mut sads = Vec::new();
    let mut left = count;
    while left > 0 {
        let n = left.min(s.target.multisign);
        // A step an earlier run used is refused (no replay): the next one is tried, a few times.
        let mut tries = 0;
        let v = loop {
            let mut auth = vec![json!({"id": "PIN", "value": s.target.pin})];
            if let Some((secret, period)) = &s.target.totp {
                auth.push(json!({"id": "OTP", "value": s.codes.next(secret, *period).await}));
            }
            let body = json!({"credentialID": s.credential, "numSignatures": n, "authData": auth});
            match try_post(http, s, "credentials/authorize", &body).await {
                Ok(v) => break v,
                Err(e) if e.contains("invalid_otp") && tries < 3 => tries += 1,
                Err(e) => panic!("{e}"),
            }
        };
        sads.push((v["SAD"].as_str().expect("SAD").to_owned(), n));
        left -= n;
    }
    sads
}

/// Signs `count` signatures, `s.hashes` per request (never across two SADs); returns the latency of
/// each request.
async fn sign(
    http: &reqwest::Client,
    s: &Shared,
    sads: &mut Vec<(String, usize)>,
    count: usize,
) -> Vec<Duration> {
    let mut latencies = Vec::new();
    let mut done = 0;
    while done < count {
        let (sad, left) = sads.last_mut().expect("SADs cover the signatures");
        let k = s.hashes.min(*left).min(count - done);
        let hashes: Vec<String> = (0..k)
            .map(|i| STANDARD.encode(sha2::Sha256::digest(format!("doc {done} {i}"))))
            .collect();
        let body = json!({"credentialID": s.credential, "SAD": sad, "hashes": hashes,
                          "signAlgo": s.target.sign_algo});
        let start = Instant::now();
        if s.floor {
            let v = post(http, s, "info", json!({})).await;
            latencies.push(start.elapsed());
            assert!(v["name"].is_string(), "{v}");
        } else {
            let v = post(http, s, "signatures/signHash", body).await;
            latencies.push(start.elapsed());
            assert_eq!(v["signatures"].as_array().map(Vec::len), Some(k), "{v}");
        }
        *left -= k;
        if *left == 0 {
            sads.pop();
        }
        done += k;
    }
    latencies
}

fn client(ca_pem: &[u8]) -> reqwest::Client {
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pemfile::certs(&mut &ca_pem[..]) {
        roots.add(cert.expect("ca.pem")).expect("CA certificate");
    }
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .no_proxy()
        .pool_max_idle_per_host(1)
        .build()
        .expect("HTTP client")
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

#[tokio::main]
async fn main() {
    let args = parse_args();
    let read = |name: &str| {
        std::fs::read(args.state.join(name))
            .unwrap_or_else(|e| panic!("{}: {e}", args.state.join(name).display()))
    };
    let demo: Value = serde_json::from_slice(&read("demo.json")).expect("demo.json");
    let url = String::from_utf8(read("server.url"))
        .unwrap()
        .trim()
        .to_owned();
    let ca = read("ca.pem");
    let target = target(&demo, &args.credential);

    let login = client(&ca)
        .post(format!("{url}/csc/v2/auth/login"))
        .basic_auth(&target.user, Some(&target.password))
        .json(&json!({}))
        .send()
        .await
        .expect("auth/login");
    let login: Value = login.json().await.expect("auth/login answer");
    let shared = Arc::new(Shared {
        url,
        access_token: login["access_token"]
            .as_str()
            .expect("access_token")
            .to_owned(),
        target,
        credential: args.credential.clone(),
        codes: Codes {
            last: Mutex::new(0),
        },
        hashes: args.hashes,
        floor: args.floor,
    });

    let per_client = args.signatures.div_ceil(args.clients);
    let start_line = Arc::new(Barrier::new(args.clients + 1));
    let mut tasks = Vec::new();
    for _ in 0..args.clients {
        let s = shared.clone();
        let start_line = start_line.clone();
        let http = client(&ca);
        let warmup = args.warmup;
        tasks.push(tokio::spawn(async move {
            let mut sads = authorize(&http, &s, per_client + warmup).await;
            sign(&http, &s, &mut sads, warmup).await;
            start_line.wait().await;
            sign(&http, &s, &mut sads, per_client).await
        }));
    }
    let spawned = Instant::now();
    start_line.wait().await;
    eprintln!("SADs and warm-up: {:.1} s", spawned.elapsed().as_secs_f64());
    let started = Instant::now();
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.expect("client task"));
    }
    let wall = started.elapsed();
    all.sort();
    let signatures = per_client * args.clients;
    println!(
        "{} clients, {} signatures in {} requests ({} hashes each) on {}: {:.3} s, {:.0} signatures/s; \
         request latency median {:.3} ms, p95 {:.3} ms, p99 {:.3} ms, max {:.3} ms",
        args.clients,
        signatures,
        all.len(),
        args.hashes,
        args.credential,
        wall.as_secs_f64(),
        signatures as f64 / wall.as_secs_f64(),
        percentile(&all, 0.5),
        percentile(&all, 0.95),
        percentile(&all, 0.99),
        percentile(&all, 1.0),
    );
}
