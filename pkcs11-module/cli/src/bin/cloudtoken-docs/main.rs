//! `cloudtoken-docs`: writes the documentation the Debian package installs, generated from the code so
//! that it cannot drift from it — `cloudtoken(1)` and one page per subcommand from the command line
//! (clap_mangen), `cloudtoken.toml(5)` from the documented example configuration (config_page.rs), and
//! bash, zsh and fish completions (clap_complete). examples/build-packages.sh runs it.
//!
//!     cloudtoken-docs --example examples/cloudtoken.example.toml --out DIR
//!
//! writes DIR/man/*.1, DIR/man/cloudtoken.toml.5 and DIR/completions/{cloudtoken.bash,_cloudtoken,
//! cloudtoken.fish}.

mod config_page;

use clap::Parser;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "cloudtoken-docs",
    version,
    about = "Write cloudtoken's man pages and shell completions"
)]
struct Args {
    /// The documented example configuration (examples/cloudtoken.example.toml).
    #[arg(long)]
    example: PathBuf,
    /// The folder to write `man/` and `completions/` into.
    #[arg(long)]
    out: PathBuf,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match write_all(&args.example, &args.out) {
        Ok(files) => {
            for f in files {
                println!("{}", f.display());
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("cloudtoken-docs: {e}");
            ExitCode::FAILURE
        }
    }
}

fn write_all(example: &Path, out: &Path) -> Result<Vec<PathBuf>, String> {
    let man = out.join("man");
    let completions = out.join("completions");
    for dir in [&man, &completions] {
        std::fs::create_dir_all(dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
    }
    let mut written = Vec::new();
    written.extend(man_pages(&man).map_err(|e| format!("man pages: {e}"))?);

    let text =
        std::fs::read_to_string(example).map_err(|e| format!("read {}: {e}", example.display()))?;
    let page = config_page::render(&text)?;
    let path = man.join("cloudtoken.toml.5");
    std::fs::write(&path, page).map_err(|e| format!("write {}: {e}", path.display()))?;
    written.push(path);

    written.extend(shell_completions(&completions).map_err(|e| format!("completions: {e}"))?);
    Ok(written)
}

/// `cloudtoken.1` with the files and variables the tool and module read, and `cloudtoken-SUB.1` for
/// each subcommand.
fn man_pages(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let cmd = cloudtoken_cli::command().disable_help_subcommand(true);
    // One page per subcommand (named cloudtoken-enroll.1, ...), and a first cloudtoken.1 ...
    clap_mangen::generate_to(cmd.clone(), dir)?;
    let mut pages: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "1"))
        .collect();
    pages.sort();
    // ... which is replaced by one that also says where things are and what to read next.
    let man = clap_mangen::Man::new(cmd.clone());
    let mut page = Vec::new();
    man.render_title(&mut page)?;
    man.render_name_section(&mut page)?;
    man.render_synopsis_section(&mut page)?;
    man.render_description_section(&mut page)?;
    man.render_options_section(&mut page)?;
    man.render_subcommands_section(&mut page)?;
    page.extend_from_slice(top_page_sections(&cmd).as_bytes());
    man.render_version_section(&mut page)?;
    std::fs::write(dir.join("cloudtoken.1"), page)?;
    Ok(pages)
}

/// FILES, ENVIRONMENT and SEE ALSO of cloudtoken(1).
fn top_page_sections(cmd: &clap::Command) -> String {
    use roff::{bold, roman, Roff};
    let mut r = Roff::new();
    r.control("SH", ["FILES"]);
    for (path, what) in [
        (
            "/usr/lib/<multiarch>/pkcs11/libcloudtoken.so",
            "The PKCS#11 module applications load; the default of register.",
        ),
        (
            "/usr/share/p11-kit/modules/cloudtoken.module",
            "Makes p11-kit load the module for every program that uses p11-kit's proxy (GnuTLS, libp11).",
        ),
        (
            "~/.config/cloudtoken/cloudtoken.toml",
            "The module configuration enroll writes (see cloudtoken.toml(5) for the search order).",
        ),
        (
            "/usr/share/cloudtoken/prompt/",
            "Prompt programs for the PIN and one-time codes: desktop.sh, terminal.sh, test-prompt.sh.",
        ),
        (
            "/usr/share/cloudtoken/cloudtoken.example.toml",
            "Every configuration key, documented.",
        ),
    ] {
        r.control("TP", []);
        r.text([bold(path)]);
        r.text([roman(what)]);
    }
    r.control("SH", ["ENVIRONMENT"]);
    for (var, what) in [
        ("CLOUDTOKEN_CONFIG", "The module configuration file to use."),
        (
            "CLOUDTOKEN_AGENT_SOCK",
            "The socket of a running agent (exported by cloudtoken agent).",
        ),
        (
            "CLOUDTOKEN_LOG, CLOUDTOKEN_LOG_FILE",
            "The module's log level and file; secrets are never logged.",
        ),
    ] {
        r.control("TP", []);
        r.text([bold(var)]);
        r.text([roman(what)]);
    }
    r.control("SH", ["SEE ALSO"]);
    let mut refs: Vec<String> = cmd
        .get_subcommands()
        .filter(|s| !s.is_hide_set())
        .map(|s| format!("cloudtoken-{}(1)", s.get_name()))
        .collect();
    refs.extend(
        [
            "cloudtoken.toml(5)",
            "p11-kit(8)",
            "pkcs11-tool(1)",
            "modutil(1)",
        ]
        .map(String::from),
    );
    r.text([roman(refs.join(", "))]);
    r.to_roff()
}

fn shell_completions(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    use clap_complete::Shell;
    let mut written = Vec::new();
    for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
        let mut cmd = cloudtoken_cli::command();
        written.push(clap_complete::generate_to(
            shell,
            &mut cmd,
            "cloudtoken",
            dir,
        )?);
    }
    Ok(written)
}
