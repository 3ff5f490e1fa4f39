//! The shipped test prompt (examples/prompt/test-prompt.sh) as a token's `prompt_command`: a folder it
//! answers from (the PIN, the service's state for `csc-server demo-otp`, a plan of right/wrong/cancel
//! answers) and the questions it was asked.

use crate::paths::{csc_server_bin, test_prompt};
use crate::service::Service;
use std::collections::HashMap;
use std::path::PathBuf;

/// A folder the test prompt answers from (see the comment at the top of test-prompt.sh).
pub struct PromptDir {
    pub path: PathBuf,
}

/// One question the prompt was asked: the CLOUDTOKEN_* variables it got.
#[derive(Debug, Clone)]
pub struct Question(pub HashMap<String, String>);

impl Question {
    pub fn get(&self, key: &str) -> &str {
        self.0
            .get(key)
            .map(String::as_str)
            .unwrap_or_else(|| panic!("question without {key}: {self:?}"))
    }
}

impl PromptDir {
    pub fn new(path: PathBuf, svc: &Service, pin: &str) -> PromptDir {
        use std::os::unix::fs::PermissionsExt;
        std::fs::create_dir_all(&path).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o700)).unwrap();
        std::fs::write(path.join("pin"), format!("{pin}\n")).unwrap();
        std::fs::write(path.join("state"), format!("{}\n", svc.state.display())).unwrap();
        std::fs::write(
            path.join("csc-server"),
            format!("{}\n", csc_server_bin().display()),
        )
        .unwrap();
        PromptDir { path }
    }

    /// The token's `prompt_command` line.
    pub fn command_toml(&self) -> String {
        format!(
            "prompt_command = [{:?}, {:?}]\n",
            test_prompt().display().to_string(),
            self.path.display().to_string()
        )
    }

    /// What to do for the next questions ("right", "wrong", "cancel", "empty", "hang").
    pub fn plan(&self, steps: &[&str]) {
        let text: String = steps.iter().map(|s| format!("{s}\n")).collect();
        std::fs::write(self.path.join("plan"), text).unwrap();
    }

    /// Every question asked so far, without forgetting them.
    pub fn questions(&self) -> Vec<Question> {
        parse_questions(&std::fs::read_to_string(self.path.join("questions")).unwrap_or_default())
    }

    /// The `n`th address (from 0) the prompt was asked to show (kind `url`), waiting up to a minute for
    /// the module to get there.
    pub fn nth_url(&self, n: usize) -> String {
        let until = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            let text = std::fs::read_to_string(self.path.join("urls")).unwrap_or_default();
            if let Some(u) = text.lines().nth(n) {
                return u.to_owned();
            }
            assert!(
                std::time::Instant::now() < until,
                "the module showed no authorization page"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }

    /// The questions asked since the last call.
    pub fn take_questions(&self) -> Vec<Question> {
        let asked = self.questions();
        let _ = std::fs::remove_file(self.path.join("questions"));
        asked
    }
}

/// The prompt's `questions` file: one line per question, tab-separated key=value fields.
fn parse_questions(text: &str) -> Vec<Question> {
    text.lines()
        .map(|line| {
            Question(
                line.split('\t')
                    .filter_map(|kv| kv.split_once('='))
                    .map(|(k, v)| (k.to_owned(), v.to_owned()))
                    .collect(),
            )
        })
        .collect()
}

/// What /proc/self/comm says: the process name the module gives the prompt (CLOUDTOKEN_PROCESS).
pub fn own_process_name() -> String {
    std::fs::read_to_string("/proc/self/comm")
        .unwrap()
        .trim()
        .to_owned()
}
