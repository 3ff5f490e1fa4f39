//! What a run found, as the table it prints, as `summary.json` — exactly the keys issue 10 names
//! (medians in ms, `threads`, the e-seal run) — and as `detail.json` next to it: every statistic, the
//! plan, the machine, and the "Done when" targets evaluated on these numbers.

use crate::alg::{Alg, ALGS};
use crate::measure::{round, Stats, Throughput};
use crate::run::{Plan, Setup};
use crate::Result;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;

/// The paths of the latency table, in its order: (summary key, title).
const PATHS: [(&str, &str); 4] = [
    ("softhsm", "SoftHSM2 direct"),
    ("p11kit_remote", "p11-kit client → server → SoftHSM"),
    (
        "remote_client_signhash",
        "remote-client signHash (in process)",
    ),
    ("cloudtoken", "cloudtoken → csc-server"),
];

pub struct Report {
    plan: Plan,
    batch_size: Option<u64>,
    bulk_batch_size: Option<u64>,
    load_start: String,
    latency: BTreeMap<(&'static str, &'static str), Stats>,
    threads: Vec<(usize, f64, Value)>,
    eseal: Option<(f64, Stats, Value)>,
}

/// /proc/loadavg's first three fields: how busy the shared machine was.
fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// `batch_size` of the `[[token]]` labelled `label` in the module's configuration.
fn batch_size(config: &Path, label: &str) -> Result<Option<u64>> {
    let text = std::fs::read_to_string(config).map_err(|e| format!("{}: {e}", config.display()))?;
    let doc: toml::Table = text
        .parse()
        .map_err(|e| format!("{}: {e}", config.display()))?;
    Ok(doc
        .get("token")
        .and_then(|t| t.as_array())
        .into_iter()
        .flatten()
        .find(|t| t.get("label").and_then(|l| l.as_str()) == Some(label))
        .and_then(|t| t.get("batch_size"))
        .and_then(|b| b.as_integer())
        .map(|b| b as u64))
}

fn throughput_json(t: &Throughput) -> Value {
    let stats = Stats::of(&t.latencies);
    json!({"threads": t.threads, "signatures": t.signatures, "seconds": round(t.seconds),
           "sig_per_s": t.rate().round(), "latency": stats.json(),
           "checked_signatures": t.kept.len(), "per_second": t.per_second})
}

impl Report {
    pub fn start(plan: &Plan, setup: &Setup) -> Result<Report> {
        Ok(Report {
            plan: plan.clone(),
            batch_size: batch_size(&setup.cloudtoken_config, &setup.cloudtoken_token)?,
            bulk_batch_size: batch_size(&setup.cloudtoken_config, &setup.cloudtoken_bulk_token)?,
            load_start: load(),
            latency: BTreeMap::new(),
            threads: Vec::new(),
            eseal: None,
        })
    }

    pub fn latency(&mut self, alg: Alg, path: &'static str, stats: Stats) {
        self.latency.insert((alg.key(), path), stats);
    }

    pub fn threads(&mut self, t: &Throughput) {
        self.threads.push((t.threads, t.rate(), throughput_json(t)));
    }

    pub fn eseal(&mut self, t: &Throughput) {
        self.eseal = Some((t.rate(), Stats::of(&t.latencies), throughput_json(t)));
    }

    fn stats(&self, alg: Alg, path: &str) -> Result<Stats> {
        self.latency
            .iter()
            .find(|((a, p), _)| *a == alg.key() && *p == path)
            .map(|(_, s)| *s)
            .ok_or_else(|| format!("no {path} latency for {}", alg.title()))
    }

    fn overhead(&self, alg: Alg) -> Result<f64> {
        Ok(self.stats(alg, "cloudtoken")?.median
            - self.stats(alg, "remote_client_signhash")?.median)
    }

    /// summary.json: the required keys first, then `detail`.
    pub fn summary(&self) -> Result<Value> {
        let mut top = Map::new();
        for alg in ALGS {
            let ct = self.stats(alg, "cloudtoken")?;
            top.insert(
                alg.key().into(),
                json!({"softhsm_ms": round(self.stats(alg, "softhsm")?.median),
                       "p11kit_remote_ms": round(self.stats(alg, "p11kit_remote")?.median),
                       "cloudtoken_ms": round(ct.median), "cloudtoken_p99_ms": round(ct.p99)}),
            );
        }
        top.insert(
            "module_overhead_ms".into(),
            json!(round(self.overhead(Alg::EcdsaP256)?)),
        );
        let threads: Map<String, Value> = self
            .threads
            .iter()
            .map(|(n, rate, _)| (n.to_string(), json!(rate.round())))
            .collect();
        top.insert("threads".into(), Value::Object(threads));
        let (rate, stats, eseal_detail) = self.eseal.as_ref().ok_or("no e-seal run")?;
        top.insert("eseal_sustained_sig_per_s".into(), json!(rate.round()));
        top.insert("eseal_p99_ms".into(), json!(round(stats.p99)));

        let mut latency = Map::new();
        for alg in ALGS {
            let per_path: Map<String, Value> = PATHS
                .iter()
                .filter_map(|(p, _)| self.stats(alg, p).ok().map(|s| ((*p).into(), s.json())))
                .collect();
            latency.insert(alg.key().into(), Value::Object(per_path));
        }
        let p = &self.plan;
        let spanned = self
            .batch_size
            .map(|b| (p.warmup + p.count) as u64 / b - p.warmup as u64 / b);
        let detail = json!({
            "plan": {"warmup": p.warmup, "signatures": p.count, "alternating_block": p.block,
                     "thread_run_s": p.thread_run.as_secs_f64(), "eseal_threads": p.eseal_threads,
                     "eseal_run_s": p.eseal_run.as_secs_f64(), "cloudtoken_batch_size": self.batch_size,
                     "threads_and_eseal_batch_size": self.bulk_batch_size,
                     "batch_authorizations_in_timed_signatures": spanned},
            "machine": {"cpus": std::thread::available_parallelism().map(|n| n.get()).ok(),
                        "loadavg_start": self.load_start, "loadavg_end": load()},
            "latency": latency,
            "module_overhead_ms": {"ecdsa_p256": round(self.overhead(Alg::EcdsaP256)?),
                                   "rsa2048": round(self.overhead(Alg::Rsa2048)?)},
            "threads": self.threads.iter().map(|(_, _, d)| d.clone()).collect::<Vec<_>>(),
            "eseal": eseal_detail,
        });
        let mut summary = Value::Object(top);
        let targets = targets(&summary, stats.median);
        summary["detail"] = detail;
        summary["detail"]["done_when"] = targets;
        Ok(summary)
    }

    /// The table printed at the end of a run.
    pub fn table(&self, summary: &Value) -> String {
        let mut t = String::new();
        let _ = writeln!(
            t,
            "\n{:<38} {:>27}   {:>27}",
            "", "ECDSA P-256 (CKM_ECDSA)", "RSA-2048 (SHA256_RSA_PKCS)"
        );
        let _ = writeln!(
            t,
            "{:<38} {:>8} {:>8} {:>9}   {:>8} {:>8} {:>9}",
            "ms per signature", "median", "p95", "p99", "median", "p95", "p99"
        );
        for (key, title) in PATHS {
            let _ = write!(t, "{title:<38}");
            for alg in ALGS {
                match self.stats(alg, key) {
                    Ok(s) => {
                        let _ = write!(t, " {:>8.3} {:>8.3} {:>9.3}  ", s.median, s.p95, s.p99);
                    }
                    Err(_) => t.push_str(&" ".repeat(30)),
                }
            }
            t.push('\n');
        }
        let d = &summary["detail"];
        let _ = writeln!(
            t,
            "{:<38} {:>8.3} {:>30.3}",
            "module overhead (median difference)",
            d["module_overhead_ms"]["ecdsa_p256"]
                .as_f64()
                .unwrap_or(f64::NAN),
            d["module_overhead_ms"]["rsa2048"]
                .as_f64()
                .unwrap_or(f64::NAN)
        );
        let _ = write!(
            t,
            "\ncloudtoken, ECDSA, one credential, {} s per row:",
            self.plan.thread_run.as_secs_f64()
        );
        for (n, rate, _) in &self.threads {
            let _ = write!(t, "  {n} thr {rate:.0}/s");
        }
        if let Some((rate, s, _)) = &self.eseal {
            let _ = writeln!(
                t,
                "\ne-seal sustained ({} threads, {} s): {rate:.0} signatures/s, median {:.3} ms, \
                 p99 {:.3} ms, max {:.3} ms",
                self.plan.eseal_threads,
                self.plan.eseal_run.as_secs_f64(),
                s.median,
                s.p99,
                s.max
            );
        }
        let _ = writeln!(t, "load average {} → {}", self.load_start, load());
        let _ = writeln!(t, "\nissue 10, Done when:");
        for target in summary["detail"]["done_when"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let _ = writeln!(
                t,
                "  [{}] {}: {} (limit {})",
                if target["met"] == true {
                    "met "
                } else {
                    "MISS"
                },
                target["target"].as_str().unwrap_or_default(),
                target["value"],
                target["limit"]
            );
        }
        t
    }

    /// Writes `summary` without its `detail` to `path`, and the detail to `detail.json` beside it, each
    /// whole (a temporary file renamed into place); the keys in its order (serde_json itself
    /// sorts an object's keys).
    pub fn write(&self, path: &Path, summary: &Value) -> Result<()> {
        let mut summary = summary.clone();
        let detail = summary
            .as_object_mut()
            .and_then(|o| o.remove("detail"))
            .ok_or("the summary has no detail")?;
        let detail_path = path.with_file_name("detail.json");
        let detail_text = serde_json::to_string_pretty(&detail).map_err(|e| e.to_string())?;
        write_whole(&detail_path, &detail_text)?;
        write_whole(path, &ordered(&summary)?)?;
        println!("\nwrote {} and {}", path.display(), detail_path.display());
        Ok(())
    }
}

fn write_whole(path: &Path, text: &str) -> Result<()> {
    let tmp = path.with_extension("json.tmp");
    let mut f = std::fs::File::create(&tmp).map_err(|e| format!("{}: {e}", tmp.display()))?;
    writeln!(f, "{text}").map_err(|e| format!("{}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, path).map_err(|e| format!("{}: {e}", path.display()))
}

/// The summary's keys in the order issue 10 lists them; any others after them.
const ORDER: [&str; 6] = [
    "ecdsa_p256",
    "rsa2048",
    "module_overhead_ms",
    "threads",
    "eseal_sustained_sig_per_s",
    "eseal_p99_ms",
];

/// Pretty JSON of `summary` with its top-level keys in [`ORDER`].
fn ordered(summary: &Value) -> Result<String> {
    let object = summary.as_object().ok_or("the summary is not an object")?;
    let mut keys: Vec<&String> = object.keys().collect();
    keys.sort_by_key(|k| ORDER.iter().position(|o| o == k).unwrap_or(ORDER.len()));
    let mut entries = Vec::new();
    for k in keys {
        let value = serde_json::to_string_pretty(&object[k]).map_err(|e| e.to_string())?;
        entries.push(format!(
            "  {}: {}",
            Value::from(k.as_str()),
            value.replace('\n', "\n  ")
        ));
    }
    Ok(format!("{{\n{}\n}}", entries.join(",\n")))
}

/// Issue 10's "Done when" targets on the summary's numbers. `eseal_median`: the e-seal run's own
/// median, which its p99 is held to.
fn targets(s: &Value, eseal_median: f64) -> Value {
    let n = |v: &Value| v.as_f64().unwrap_or(f64::NAN);
    let target = |name: &str, value: f64, limit: f64| json!({"target": name, "value": round(value), "limit": round(limit), "met": value <= limit});
    let at_least = |name: &str, value: f64, limit: f64| json!({"target": name, "value": round(value), "limit": round(limit), "met": value >= limit});
    let (ec, rsa) = (&s["ecdsa_p256"], &s["rsa2048"]);
    json!([
        target(
            "ECDSA cloudtoken_ms <= p11kit_remote_ms",
            n(&ec["cloudtoken_ms"]),
            n(&ec["p11kit_remote_ms"])
        ),
        target(
            "RSA cloudtoken_ms <= 1.5 x softhsm_ms",
            n(&rsa["cloudtoken_ms"]),
            1.5 * n(&rsa["softhsm_ms"])
        ),
        target(
            "module_overhead_ms <= 0.1",
            n(&s["module_overhead_ms"]),
            0.1
        ),
        target(
            "ECDSA cloudtoken_p99_ms <= 3 x cloudtoken_ms",
            n(&ec["cloudtoken_p99_ms"]),
            3.0 * n(&ec["cloudtoken_ms"])
        ),
        target(
            "RSA cloudtoken_p99_ms <= 3 x cloudtoken_ms",
            n(&rsa["cloudtoken_p99_ms"]),
            3.0 * n(&rsa["cloudtoken_ms"])
        ),
        target(
            "eseal_p99_ms <= 3 x the e-seal run's median",
            n(&s["eseal_p99_ms"]),
            3.0 * eseal_median
        ),
        at_least(
            "threads[8] >= 4 x threads[1]",
            n(&s["threads"]["8"]),
            4.0 * n(&s["threads"]["1"])
        ),
        at_least(
            "eseal_sustained_sig_per_s >= 2000",
            n(&s["eseal_sustained_sig_per_s"]),
            2000.0
        ),
    ])
}
