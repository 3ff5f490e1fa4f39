//! The sequence of one benchmark run: latency per path and scheme (SoftHSM direct, p11-kit remoting,
//! then cloudtoken and remote-client's signHash in alternating blocks), throughput by thread count,
//! and the sustained e-seal run. Every timed signature, or a sample of them in the throughput runs,
//! is checked against the public key after its run.

use crate::alg::{Alg, Message, ALGS};
use crate::direct::{Account, Direct};
use crate::measure::{latency, throughput, Run, Signer, Stats, Throughput};
use crate::report::Report;
use crate::softhsm;
use crate::token::{self, Token};
use crate::verify::{check_all, Encoding};
use crate::Result;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// What the servers and files of this run are (from the command line).
pub struct Setup {
    pub softhsm_dir: PathBuf,
    pub softhsm_module: PathBuf,
    pub p11kit_module: PathBuf,
    pub p11kit_address: String,
    pub cloudtoken_module: PathBuf,
    pub cloudtoken_config: PathBuf,
    /// The token of the latency runs (batches spanning several renewals).
    pub cloudtoken_token: String,
    /// The token of the thread and sustained runs (the seal's largest batches).
    pub cloudtoken_bulk_token: String,
    pub csc_state: PathBuf,
    pub out: PathBuf,
    pub quick: bool,
}

/// How much is measured.
#[derive(Debug, Clone)]
pub struct Plan {
    pub warmup: usize,
    pub count: usize,
    /// Signatures per turn when cloudtoken and remote-client alternate.
    pub block: usize,
    pub thread_counts: Vec<usize>,
    pub thread_run: Duration,
    pub eseal_threads: usize,
    pub eseal_run: Duration,
}

impl Plan {
    fn new(quick: bool) -> Plan {
        if quick {
            Plan {
                warmup: 50,
                count: 300,
                block: 50,
                thread_counts: vec![1, 2, 4, 8, 16],
                thread_run: Duration::from_secs(1),
                eseal_threads: 16,
                eseal_run: Duration::from_secs(5),
            }
        } else {
            Plan {
                warmup: 200,
                count: 2000,
                block: 250,
                thread_counts: vec![1, 2, 4, 8, 16],
                thread_run: Duration::from_secs(5),
                eseal_threads: 16,
                eseal_run: Duration::from_secs(60),
            }
        }
    }
}

/// The e-seal account of the reference service and its credentials, by scheme.
const ACCOUNT: &str = "seal";
fn credential(alg: Alg) -> &'static str {
    match alg {
        Alg::EcdsaP256 => "seal-p256",
        Alg::Rsa2048 => "seal-rsa2048",
    }
}

/// The label the module gives a credential's objects: its description in demo.json (`label`).
fn credential_label(state: &Path, id: &str) -> Result<String> {
    let path = state.join("demo.json");
    let demo: serde_json::Value = serde_json::from_slice(
        &std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?,
    )
    .map_err(|e| format!("{}: {e}", path.display()))?;
    demo["tokens"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|t| t["credentials"].as_array().into_iter().flatten())
        .find(|c| c["id"] == id)
        .and_then(|c| c["label"].as_str().map(str::to_owned))
        .ok_or_else(|| format!("{}: no credential {id}", path.display()))
}

fn progress(what: &str) {
    eprintln!("bench: {what}");
}

/// Latency of one PKCS#11 path (its own token), both schemes, one session.
fn pkcs11_latency(token: &Token, labels: [&str; 2], plan: &Plan) -> Result<Vec<Run>> {
    let s = token.session()?;
    let mut runs = Vec::new();
    for (alg, label) in ALGS.into_iter().zip(labels) {
        progress(&format!("{}: {} latency", token.name, alg.title()));
        let key = token.key(&s, label, alg)?;
        let tag = format!("{} {}", token.name, alg.key());
        let mut signers: Vec<Signer<'_>> = vec![Box::new(|i| {
            let m = Message::new(&tag, i);
            let sig = token::sign(&s, &key, alg, &m)?;
            Ok((m.text, sig))
        })];
        let run = latency(&mut signers, plan.warmup, plan.count, plan.count)?
            .pop()
            .ok_or("no run")?;
        drop(signers);
        check_all(token.name, &key.public, alg, Encoding::Pkcs11, &run.signed)?;
        runs.push(run);
    }
    Ok(runs)
}

/// cloudtoken and remote-client's signHash, same credential and server, in alternating blocks:
/// (cloudtoken, remote-client) per scheme.
fn cloudtoken_latency(
    token: &Token,
    account: &Account,
    labels: &[String; 2],
    plan: &Plan,
) -> Result<Vec<(Run, Run)>> {
    let s = token.session()?;
    let mut out = Vec::new();
    for (alg, label) in ALGS.into_iter().zip(labels) {
        progress(&format!(
            "cloudtoken and remote-client: {} latency",
            alg.title()
        ));
        let key = token.key(&s, label, alg)?;
        let direct = Direct::open(
            account,
            credential(alg),
            alg,
            (plan.warmup + plan.count) as u32,
        )?;
        let (ct_tag, rc_tag) = (
            format!("cloudtoken {}", alg.key()),
            format!("remote-client {}", alg.key()),
        );
        let mut signers: Vec<Signer<'_>> = vec![
            Box::new(|i| {
                let m = Message::new(&ct_tag, i);
                let sig = token::sign(&s, &key, alg, &m)?;
                Ok((m.text, sig))
            }),
            Box::new(|i| {
                let m = Message::new(&rc_tag, i);
                let sig = direct.sign(&m)?;
                Ok((m.text, sig))
            }),
        ];
        let mut runs = latency(&mut signers, plan.warmup, plan.count, plan.block)?;
        drop(signers);
        let (rc, ct) = (runs.pop().ok_or("no run")?, runs.pop().ok_or("no run")?);
        check_all("cloudtoken", &key.public, alg, Encoding::Pkcs11, &ct.signed)?;
        check_all(
            "remote-client",
            &direct.public,
            alg,
            Encoding::Csc,
            &rc.signed,
        )?;
        out.push((ct, rc));
    }
    Ok(out)
}

/// `threads` sessions of the cloudtoken token signing ECDSA with one credential for `duration`.
fn cloudtoken_throughput(
    token: &Token,
    label: &str,
    threads: usize,
    duration: Duration,
) -> Result<Throughput> {
    let alg = Alg::EcdsaP256;
    let check = {
        let s = token.session()?;
        token.key(&s, label, alg)?.public
    };
    let t = throughput(threads, duration, |t| {
        let s = token.session()?;
        let key = token.key(&s, label, alg)?;
        let tag = format!("throughput {threads} thread {t}");
        Ok(move |i| {
            let m = Message::new(&tag, i);
            let sig = token::sign(&s, &key, alg, &m)?;
            Ok((m.text, sig))
        })
    })?;
    check_all("cloudtoken", &check, alg, Encoding::Pkcs11, &t.kept)?;
    Ok(t)
}

pub fn run(setup: &Setup) -> Result<()> {
    let plan = Plan::new(setup.quick);
    // The modules read these when they are initialized; set before any thread or module exists.
    hsm_store::softhsm::use_config(&setup.softhsm_dir.join(hsm_store::softhsm::CONF_FILE))
        .map_err(|e| e.to_string())?;
    std::env::set_var("P11_KIT_SERVER_ADDRESS", &setup.p11kit_address);
    std::env::set_var("CLOUDTOKEN_CONFIG", &setup.cloudtoken_config);
    let mut report = Report::start(&plan, setup)?;

    let pin_path = setup.softhsm_dir.join(softhsm::PIN_FILE);
    let pin = std::fs::read_to_string(&pin_path)
        .map_err(|e| format!("{}: {e}", pin_path.display()))?
        .trim()
        .to_owned();
    let labels = [softhsm::KEY_P256, softhsm::KEY_RSA2048];
    for (name, module) in [
        ("softhsm", &setup.softhsm_module),
        ("p11kit_remote", &setup.p11kit_module),
    ] {
        let token = Token::open(name, module, softhsm::TOKEN, Some(pin.clone()))?;
        let runs = pkcs11_latency(&token, labels, &plan)?;
        token.finish()?;
        for (alg, run) in ALGS.into_iter().zip(runs) {
            report.latency(alg, name, Stats::of(&run.latencies));
        }
    }

    let account = Account::read(&setup.csc_state, ACCOUNT)?;
    let ct_labels = [
        credential_label(&setup.csc_state, credential(Alg::EcdsaP256))?,
        credential_label(&setup.csc_state, credential(Alg::Rsa2048))?,
    ];
    let token = Token::open(
        "cloudtoken",
        &setup.cloudtoken_module,
        &setup.cloudtoken_token,
        None,
    )?;
    for (alg, (ct, rc)) in ALGS
        .into_iter()
        .zip(cloudtoken_latency(&token, &account, &ct_labels, &plan)?)
    {
        report.latency(alg, "cloudtoken", Stats::of(&ct.latencies));
        report.latency(alg, "remote_client_signhash", Stats::of(&rc.latencies));
    }
    let bulk = token.sibling(&setup.cloudtoken_bulk_token)?;
    for &n in &plan.thread_counts {
        progress(&format!(
            "cloudtoken: {n} threads for {} s",
            plan.thread_run.as_secs_f64()
        ));
        let t = cloudtoken_throughput(&bulk, &ct_labels[0], n, plan.thread_run)?;
        report.threads(&t);
    }
    progress(&format!(
        "cloudtoken: sustained e-seal run, {} threads for {} s",
        plan.eseal_threads,
        plan.eseal_run.as_secs_f64()
    ));
    let t = cloudtoken_throughput(&bulk, &ct_labels[0], plan.eseal_threads, plan.eseal_run)?;
    report.eseal(&t);
    token.finish()?;

    let summary = report.summary()?;
    print!("{}", report.table(&summary));
    report.write(&setup.out, &summary)
}
