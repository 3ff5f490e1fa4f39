//! The prompt channel: a program named by the token's `prompt_command` asks the user for the PIN or a
//! one-time password, and its first line of standard output is the answer.
//!
//! The program runs without a shell, with standard input closed and standard error inherited; what it is
//! asking for travels in `CLOUDTOKEN_*` environment variables (see [`Prompt::environment`] and the
//! README). It is given `prompt_timeout_ms`: when that passes the module kills it. A program that exits
//! with a failure status, or answers nothing, means the user cancelled. Every outcome other than an
//! answer is CKR_FUNCTION_CANCELED (CKR_FUNCTION_FAILED when the program cannot be started), with a log
//! line that never contains what the program wrote.
//!
//! Kind `url` ([`show_url`]) is no question: the program shows the user a page to open (CLOUDTOKEN_URL:
//! an OAuth 2.0 authorization at the service), and the answer comes from the browser, not from the
//! program; without a `prompt_command` the page is opened with `xdg-open`. A program that exits with a
//! failure status means the user cancelled.
//!
//! Callers never hold the login or session locks while a prompt runs (the user may take minutes).

use crate::child;
use crate::error::{self, CkResult};
use cryptoki_sys::*;
use remote_client::Secret;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

/// Longest answer accepted; a program that writes more is treated as broken, not trusted.
const MAX_ANSWER: usize = 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Pin,
    Otp,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Pin => "pin",
            Kind::Otp => "otp",
        }
    }

    fn what(self) -> &'static str {
        match self {
            Kind::Pin => "the PIN",
            Kind::Otp => "the one-time password",
        }
    }
}

/// One question to the user.
#[derive(Debug, Clone)]
pub struct Prompt<'a> {
    pub kind: Kind,
    pub token_label: &'a str,
    /// Empty when the question is not about one key (a protected-path login).
    pub key_label: &'a str,
    pub credential_id: &'a str,
    /// Signatures the answer authorizes; 0 for a login.
    pub signatures: u32,
    /// The text sent to the service as the CSC `description`.
    pub description: &'a str,
    /// "totp" (the user's authenticator app) or "sms" (a code the service sent); empty for a PIN.
    pub otp_type: &'a str,
    /// 1 for the first question of an authorization, 2 after the service refused the first answer, ...
    pub attempt: u32,
    /// Why the question is asked again, e.g. "The code was not accepted; 2 attempts left".
    pub message: &'a str,
}

impl Prompt<'_> {
    /// The variables the program gets, in addition to the application's environment.
    pub fn environment(&self) -> Vec<(&'static str, String)> {
        let mut env = vec![("CLOUDTOKEN_PROMPT_KIND", self.kind.name().to_owned())];
        env.extend(common_environment(
            self.token_label,
            self.key_label,
            self.credential_id,
            self.signatures,
            self.description,
        ));
        env.extend([
            ("CLOUDTOKEN_OTP_TYPE", self.otp_type.to_owned()),
            ("CLOUDTOKEN_ATTEMPT", self.attempt.to_string()),
            ("CLOUDTOKEN_MESSAGE", self.message.to_owned()),
        ]);
        env
    }
}

/// What every kind of prompt is told about the signature it is for.
fn common_environment(
    token_label: &str,
    key_label: &str,
    credential_id: &str,
    signatures: u32,
    description: &str,
) -> Vec<(&'static str, String)> {
    vec![
        ("CLOUDTOKEN_TOKEN_LABEL", token_label.to_owned()),
        ("CLOUDTOKEN_KEY_LABEL", key_label.to_owned()),
        ("CLOUDTOKEN_CREDENTIAL_ID", credential_id.to_owned()),
        ("CLOUDTOKEN_SIGNATURES", signatures.to_string()),
        ("CLOUDTOKEN_PROCESS", process_name()),
        ("CLOUDTOKEN_DESCRIPTION", description.to_owned()),
    ]
}

/// A page for the user to open in a browser (kind `url`).
#[derive(Debug, Clone)]
pub struct UrlPrompt<'a> {
    pub token_label: &'a str,
    pub key_label: &'a str,
    pub credential_id: &'a str,
    pub signatures: u32,
    pub description: &'a str,
    /// CLOUDTOKEN_URL.
    pub url: &'a str,
}

impl UrlPrompt<'_> {
    pub fn environment(&self) -> Vec<(&'static str, String)> {
        let mut env = vec![("CLOUDTOKEN_PROMPT_KIND", "url".to_owned())];
        env.extend(common_environment(
            self.token_label,
            self.key_label,
            self.credential_id,
            self.signatures,
            self.description,
        ));
        env.push(("CLOUDTOKEN_URL", self.url.to_owned()));
        env
    }
}

/// Opens pages when the token has no prompt_command.
pub const DEFAULT_OPENER: &str = "/usr/bin/xdg-open";

/// The program showing a page, running while the module waits for the browser; stopped when dropped.
pub struct Shown {
    child: Option<Child>,
    /// `xdg-open` rather than the token's prompt: its failure means no browser, not a cancel.
    opener: bool,
}

impl Shown {
    /// `Err` once the program failed: the user cancelled (a prompt), or no browser opened (xdg-open),
    /// with the code that says so. A program that ended well leaves the wait to the browser.
    pub fn check(&mut self, slot: CK_SLOT_ID) -> CkResult<()> {
        let Some(child) = self.child.as_mut() else {
            return Ok(());
        };
        match child.try_wait() {
            Ok(Some(status)) if !status.success() => {
                self.child = None;
                Err(if self.opener {
                    error::logged(
                        CKR_FUNCTION_FAILED,
                        format!("slot {slot}: {DEFAULT_OPENER} could not open a browser ({status}); configure prompt_command"),
                    )
                } else {
                    error::logged(
                        CKR_FUNCTION_CANCELED,
                        format!("slot {slot}: the user cancelled the prompt for the authorization page ({status})"),
                    )
                })
            }
            Ok(Some(_)) | Err(_) => {
                self.child = None;
                Ok(())
            }
            Ok(None) => Ok(()),
        }
    }
}

impl Drop for Shown {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            if matches!(child.try_wait(), Ok(None)) {
                child::stop(&mut child);
            }
        }
    }
}

/// Shows the user `prompt.url` through `command` (the token's prompt_command), else opens it with
/// [`DEFAULT_OPENER`]. Returns at once: the program runs while the caller waits for the browser.
pub fn show_url(
    command: Option<&[String]>,
    slot: CK_SLOT_ID,
    prompt: &UrlPrompt<'_>,
) -> CkResult<Shown> {
    let (mut cmd, opener) = match command {
        Some(command) => {
            let program = command.first().ok_or_else(|| {
                error::logged(
                    CKR_FUNCTION_FAILED,
                    format!("slot {slot}: prompt_command is empty"),
                )
            })?;
            crate::config::files::check_program("prompt_command", Path::new(program)).map_err(
                |e| {
                    error::logged(
                        CKR_FUNCTION_FAILED,
                        format!("slot {slot}: cannot run the prompt: {e}"),
                    )
                },
            )?;
            let mut c = Command::new(program);
            c.args(&command[1..]).envs(prompt.environment());
            (c, false)
        }
        None => {
            let mut c = Command::new(DEFAULT_OPENER);
            c.arg(prompt.url);
            (c, true)
        }
    };
    log::info!(
        "slot {slot}: showing the user the service's authorization page for {} through {}",
        prompt.credential_id,
        if opener { DEFAULT_OPENER } else { "the prompt" }
    );
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| {
            let hint = if opener {
                "; configure prompt_command"
            } else {
                ""
            };
            error::logged(
                CKR_FUNCTION_FAILED,
                format!("slot {slot}: cannot show the authorization page: {e}{hint}"),
            )
        })?;
    Ok(Shown {
        child: Some(child),
        opener,
    })
}

/// The name of the process the module runs in (what the user recognises: "soffice.bin", "pdfsig").
pub fn process_name() -> String {
    std::fs::read_to_string("/proc/self/comm")
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "an application".to_owned())
}

/// Why a prompt gave no answer.
#[derive(Debug)]
enum NoAnswer {
    Start(String),
    TimedOut,
    Failed(ExitStatus),
    Empty,
    TooLong,
    NotUtf8,
}

/// Asks the user through `command` (program and arguments). `slot` names the token in log lines.
pub fn ask(
    command: &[String],
    timeout: Duration,
    slot: CK_SLOT_ID,
    prompt: &Prompt<'_>,
) -> CkResult<Secret> {
    let Some(program) = command.first() else {
        return Err(error::logged(
            CKR_FUNCTION_FAILED,
            format!("slot {slot}: prompt_command is empty"),
        ));
    };
    log::info!(
        "slot {slot}: asking the user for {} through {program} (attempt {})",
        prompt.kind.what(),
        prompt.attempt
    );
    let outcome = crate::config::files::check_program("prompt_command", Path::new(program))
        .map_err(NoAnswer::Start)
        .and_then(|()| run(command, timeout, &prompt.environment()));
    let what = prompt.kind.what();
    match outcome {
        Ok(answer) => {
            log::debug!("slot {slot}: the prompt answered");
            Ok(answer)
        }
        Err(NoAnswer::Start(e)) => Err(error::logged(
            CKR_FUNCTION_FAILED,
            format!("slot {slot}: cannot run the prompt: {e}"),
        )),
        Err(NoAnswer::TimedOut) => Err(error::logged(
            CKR_FUNCTION_CANCELED,
            format!(
                "slot {slot}: nobody answered the prompt for {what} within {} ms; it was stopped",
                timeout.as_millis()
            ),
        )),
        Err(NoAnswer::Failed(status)) => Err(error::logged(
            CKR_FUNCTION_CANCELED,
            format!("slot {slot}: the user cancelled the prompt for {what} ({status})"),
        )),
        Err(NoAnswer::Empty) => Err(error::logged(
            CKR_FUNCTION_CANCELED,
            format!("slot {slot}: the prompt for {what} answered nothing; taken as cancel"),
        )),
        Err(NoAnswer::TooLong) => Err(error::logged(
            CKR_FUNCTION_CANCELED,
            format!(
                "slot {slot}: the prompt for {what} wrote more than {MAX_ANSWER} bytes; ignored"
            ),
        )),
        Err(NoAnswer::NotUtf8) => Err(error::logged(
            CKR_FUNCTION_CANCELED,
            format!("slot {slot}: the prompt's answer for {what} is not UTF-8; ignored"),
        )),
    }
}

fn run(
    command: &[String],
    timeout: Duration,
    env: &[(&'static str, String)],
) -> Result<Secret, NoAnswer> {
    let mut child = Command::new(&command[0])
        .args(&command[1..])
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| NoAnswer::Start(format!("{}: {e}", command[0])))?;
    // Whatever goes wrong, the program does not stay behind waiting for a user who gave up.
    let (out, status) = child::collect(&mut child, timeout, MAX_ANSWER).map_err(|e| match e {
        child::Overstay::TooLong => NoAnswer::TooLong,
        child::Overstay::TimedOut => NoAnswer::TimedOut,
        child::Overstay::NoPipe => NoAnswer::Start("no pipe to the program".into()),
    })?;
    if let Some(status) = status.filter(|s| !s.success()) {
        return Err(NoAnswer::Failed(status));
    }
    let line = out.split(|b| *b == b'\n').next().unwrap_or_default();
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if line.is_empty() {
        return Err(NoAnswer::Empty);
    }
    let text = std::str::from_utf8(line).map_err(|_| NoAnswer::NotUtf8)?;
    Ok(Secret::new(text))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    fn question() -> Prompt<'static> {
        Prompt {
            kind: Kind::Otp,
            token_label: "Alice Example",
            key_label: "Alice (P-256)",
            credential_id: "alice-p256",
            signatures: 30,
            description: "Sign 30 documents with 'Alice (P-256)' for test",
            otp_type: "sms",
            attempt: 2,
            message: "The code was not accepted; 2 attempts left",
        }
    }

    fn sh(script: &str) -> Vec<String> {
        vec!["/bin/sh".into(), "-c".into(), script.into()]
    }

    fn ask_sh(script: &str, timeout_ms: u64) -> CkResult<Secret> {
        ask(
            &sh(script),
            Duration::from_millis(timeout_ms),
            7,
            &question(),
        )
    }

    #[test]
    fn the_first_line_is_the_answer() {
        let a = ask_sh("printf '123456\\r\\nsecond line\\n'", 5000).unwrap();
        assert_eq!(a.expose(), "123456");
        // No line end at all is fine too, and spaces inside the answer are kept.
        let a = ask_sh("printf 'pass phrase'", 5000).unwrap();
        assert_eq!(a.expose(), "pass phrase");
    }

    #[test]
    fn the_program_gets_the_question_in_its_environment() {
        let script = "printf '%s|%s|%s|%s|%s|%s|%s|%s|%s\\n' \"$CLOUDTOKEN_PROMPT_KIND\" \
                      \"$CLOUDTOKEN_TOKEN_LABEL\" \"$CLOUDTOKEN_KEY_LABEL\" \"$CLOUDTOKEN_CREDENTIAL_ID\" \
                      \"$CLOUDTOKEN_SIGNATURES\" \"$CLOUDTOKEN_DESCRIPTION\" \"$CLOUDTOKEN_OTP_TYPE\" \
                      \"$CLOUDTOKEN_ATTEMPT\" \"$CLOUDTOKEN_MESSAGE\"";
        let a = ask_sh(script, 5000).unwrap();
        assert_eq!(
            a.expose(),
            "otp|Alice Example|Alice (P-256)|alice-p256|30|Sign 30 documents with 'Alice (P-256)' \
             for test|sms|2|The code was not accepted; 2 attempts left"
        );
        let a = ask_sh("printf '%s\\n' \"$CLOUDTOKEN_PROCESS\"", 5000).unwrap();
        assert_eq!(a.expose(), process_name());
        // Standard input is closed: a program that reads it gets end of file, not the test's input.
        assert_eq!(
            ask_sh("read x; echo \"[$x]\"", 5000).map(|s| s.expose().to_owned()),
            Ok("[]".to_owned())
        );
    }

    #[test]
    fn failure_status_and_empty_answers_are_cancel() {
        assert_eq!(
            ask_sh("echo 123456; exit 1", 5000).unwrap_err(),
            CKR_FUNCTION_CANCELED
        );
        assert_eq!(ask_sh("exit 0", 5000).unwrap_err(), CKR_FUNCTION_CANCELED);
        assert_eq!(
            ask_sh("printf '\\nlater\\n'", 5000).unwrap_err(),
            CKR_FUNCTION_CANCELED
        );
        assert_eq!(
            ask_sh("printf '\\377\\376\\n'", 5000).unwrap_err(),
            CKR_FUNCTION_CANCELED
        );
    }

    #[test]
    fn oversized_answers_are_refused() {
        assert_eq!(
            ask_sh("head -c 5000 /dev/zero | tr '\\0' 7", 5000).unwrap_err(),
            CKR_FUNCTION_CANCELED
        );
        let just_fits = ask_sh("head -c 1024 /dev/zero | tr '\\0' 7", 5000).unwrap();
        assert_eq!(just_fits.len(), 1024);
    }

    #[test]
    fn timeout_kills_the_program_and_cancels() {
        let started = Instant::now();
        assert_eq!(
            ask_sh("exec sleep 20", 300).unwrap_err(),
            CKR_FUNCTION_CANCELED
        );
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn a_timed_out_program_gets_sigterm_first() {
        let d = tempfile::tempdir().unwrap();
        let marker = d.path().join("terminated");
        let script = format!(
            "trap 'echo yes > {}; exit 1' TERM; while :; do sleep 0.05; done",
            marker.display()
        );
        assert_eq!(ask_sh(&script, 300).unwrap_err(), CKR_FUNCTION_CANCELED);
        assert_eq!(std::fs::read_to_string(&marker).unwrap(), "yes\n");
    }

    #[test]
    fn a_background_process_holding_the_pipe_does_not_block_the_answer() {
        // The program answers and exits, but leaves a process that keeps standard output open.
        let started = Instant::now();
        let a = ask_sh("sleep 3 & echo 424242", 10_000).unwrap();
        assert_eq!(a.expose(), "424242");
        assert!(started.elapsed() < Duration::from_secs(2));
    }

    fn url_prompt() -> UrlPrompt<'static> {
        UrlPrompt {
            token_label: "Alice Example",
            key_label: "Alice (P-256, OAuth 2.0)",
            credential_id: "alice-p256-oauth2",
            signatures: 1,
            description: "Sign 1 document",
            url: "https://127.0.0.1:8443/oauth2/authorize?x=1",
        }
    }

    fn wait_check(shown: &mut Shown) -> CkResult<()> {
        let until = Instant::now() + Duration::from_secs(5);
        loop {
            shown.check(3)?;
            if shown.child.is_none() || Instant::now() > until {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    #[test]
    fn a_url_prompt_gets_the_page_and_its_failure_is_a_cancel() {
        let d = tempfile::tempdir().unwrap();
        let out = d.path().join("env");
        let script = format!(
            "printf '%s|%s|%s' \"$CLOUDTOKEN_PROMPT_KIND\" \"$CLOUDTOKEN_URL\" \"$CLOUDTOKEN_CREDENTIAL_ID\" > {}",
            out.display()
        );
        let mut shown = show_url(Some(&sh(&script)), 3, &url_prompt()).unwrap();
        wait_check(&mut shown).unwrap();
        assert_eq!(
            std::fs::read_to_string(&out).unwrap(),
            "url|https://127.0.0.1:8443/oauth2/authorize?x=1|alice-p256-oauth2"
        );
        let mut cancelled = show_url(Some(&sh("exit 1")), 3, &url_prompt()).unwrap();
        assert_eq!(
            wait_check(&mut cancelled).unwrap_err(),
            CKR_FUNCTION_CANCELED
        );
    }

    #[test]
    fn a_url_prompt_still_running_is_stopped_when_dropped() {
        let d = tempfile::tempdir().unwrap();
        let marker = d.path().join("terminated");
        let script = format!(
            "trap 'echo yes > {}; exit 1' TERM; while :; do sleep 0.05; done",
            marker.display()
        );
        let mut shown = show_url(Some(&sh(&script)), 3, &url_prompt()).unwrap();
        std::thread::sleep(Duration::from_millis(200));
        assert!(shown.check(3).is_ok());
        drop(shown);
        assert_eq!(std::fs::read_to_string(&marker).unwrap(), "yes\n");
    }

    #[test]
    fn a_program_that_cannot_run_fails_clearly() {
        let missing = vec!["/nonexistent/prompt".to_owned()];
        assert_eq!(
            ask(&missing, Duration::from_secs(1), 0, &question()).unwrap_err(),
            CKR_FUNCTION_FAILED
        );
        assert_eq!(
            ask(&[], Duration::from_secs(1), 0, &question()).unwrap_err(),
            CKR_FUNCTION_FAILED
        );
    }
}
