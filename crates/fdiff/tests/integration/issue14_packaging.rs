//! Issue 14: `--version` with the git commit, one exit-code table behind `--help`, `fdiff(1)` and
//! the README, the man pages of every command, and the completion scripts answering `--pid` and
//! `--name` from the running processes (through a real bash where there is one).

use crate::common::*;
use fdiff::exit_codes::{DOCUMENTED, markdown_table, plain};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

fn squash(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A man page's text with roff's escapes of the characters the table uses undone.
fn unroff(s: &str) -> String {
    squash(
        &s.replace("\\-", "-")
            .replace("\\(aq", "'")
            .replace("\\*(Aq", "'")
            .replace("\\fB", "")
            .replace("\\fR", "")
            .replace("\\fI", "")
            .replace("\\&", ""),
    )
}

fn generated() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("assets");
    let o = fdiff(&["__generate", &out.to_string_lossy()]);
    assert_eq!(code(&o), 0, "{}", show(&o));
    (dir, out)
}

fn readme() -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../README.md");
    std::fs::read_to_string(&p).expect("README.md")
}

#[test]
fn issue14_version_names_the_commit_it_was_built_from() {
    let o = fdiff(&["--version"]);
    assert_eq!(code(&o), 0, "{}", show(&o));
    let v = stdout_of(&o);
    let prefix = format!("fdiff {} (commit ", env!("CARGO_PKG_VERSION"));
    let rest = v
        .trim_end()
        .strip_prefix(&prefix)
        .and_then(|r| r.strip_suffix(')'))
        .unwrap_or_else(|| panic!("version line {v:?}"));
    let hash = rest.strip_suffix("-dirty").unwrap_or(rest);
    let head = Command::new("git")
        .args([
            "-C",
            env!("CARGO_MANIFEST_DIR"),
            "rev-parse",
            "--short=12",
            "HEAD",
        ])
        .output()
        .ok()
        .filter(|o| o.status.success());
    match head {
        Some(h) => assert_eq!(hash, String::from_utf8_lossy(&h.stdout).trim(), "{v}"),
        None => {
            println!("skip the commit comparison: no git repository here");
            assert!(
                hash == "unknown" || hash.chars().all(|c| c.is_ascii_hexdigit()),
                "{v}"
            );
        }
    }
}

#[test]
fn issue14_exit_codes_agree_in_help_man_page_and_readme() {
    let readme = readme();
    assert!(
        readme.contains(&markdown_table()),
        "README's exit-code table differs from exit_codes::DOCUMENTED; it should be:\n{}",
        markdown_table()
    );
    let help = squash(&stdout_of(&fdiff(&["--help"])));
    let (_dir, out) = generated();
    let man = unroff(&std::fs::read_to_string(out.join("man/fdiff.1")).expect("fdiff.1"));
    let man_exit = man
        .split(".SH \"EXIT STATUS\"")
        .nth(1)
        .expect("an EXIT STATUS section");
    for (code, meaning) in DOCUMENTED {
        let row = squash(&format!("{code} {}", plain(meaning)));
        assert!(help.contains(&row), "--help lacks {row:?}:\n{help}");
        let man_row = squash(&format!(".TP {code} {}", plain(meaning)));
        assert!(
            man_exit.contains(&man_row),
            "fdiff.1 lacks {man_row:?}:\n{man_exit}"
        );
    }
    // The README has no other exit-code table that could drift.
    assert_eq!(readme.matches("| code | meaning |").count(), 1);
}

#[test]
fn issue14_a_man_page_per_command_with_every_option() {
    let (_dir, out) = generated();
    let cmd = <fdiff::cli::Cli as clap::CommandFactory>::command();
    let mut commands: Vec<(String, &clap::Command)> = vec![("fdiff".into(), &cmd)];
    for s in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        commands.push((format!("fdiff-{}", s.get_name()), s));
    }
    assert!(commands.len() >= 7, "{}", commands.len());
    for (name, c) in &commands {
        let path = out.join(format!("man/{name}.1"));
        let text = unroff(&std::fs::read_to_string(&path).unwrap_or_default());
        assert!(text.contains(&format!(".TH {name} 1")), "{name}: {text}");
        for a in c.get_arguments().filter(|a| !a.is_hide_set()) {
            if let Some(long) = a.get_long() {
                assert!(
                    text.contains(&format!("--{long}")),
                    "{name}.1 lacks --{long}"
                );
            }
        }
        for s in [
            "EXIT STATUS",
            "ENVIRONMENT",
            "NO_COLOR",
            "EXAMPLES",
            "SEE ALSO",
        ] {
            assert!(text.contains(s), "{name}.1 lacks {s}");
        }
    }
    let top = unroff(&std::fs::read_to_string(out.join("man/fdiff.1")).unwrap_or_default());
    for s in [
        "PERMISSIONS",
        "CAP_SYS_PTRACE",
        "fdiff/snapshot/v1",
        "fdiff/report/v1",
        "fdiff/diff/v1",
        "fdiff/recording/v1",
        "fdiff-run(1)",
    ] {
        assert!(top.contains(s), "fdiff.1 lacks {s}");
    }
    // Hidden commands get no page.
    assert!(!out.join("man/fdiff-__demo-child.1").exists());
    assert!(!out.join("man/fdiff-__generate.1").exists());
    // man(1) renders it, where there is one.
    if Command::new("man").arg("--version").output().is_err() {
        println!("skip rendering with man -l: man is not installed");
        return;
    }
    let o = Command::new("man")
        .args(["-l", "-P", "cat"])
        .arg(out.join("man/fdiff-run.1"))
        .env("MANWIDTH", "80")
        .output()
        .expect("man");
    let shown = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(shown.contains("--fail-on-leak"), "{shown}");
    assert!(shown.contains("EXIT STATUS"), "{shown}");
}

#[test]
fn issue14_completions_subcommand_prints_each_shells_script() {
    for (shell, needle) in [
        ("bash", "complete -o nospace -o bashdefault"),
        ("zsh", "#compdef fdiff"),
        ("fish", "complete --keep-order --exclusive --command fdiff"),
    ] {
        let o = fdiff(&["completions", shell]);
        assert_eq!(code(&o), 0, "{}", show(&o));
        let s = stdout_of(&o);
        assert!(s.contains(needle), "{shell}: {s}");
        assert!(s.contains("FDIFF_COMPLETE"), "{shell}: {s}");
    }
    let o = fdiff(&["completions", "tcsh"]);
    let line = assert_error(&o, 2);
    assert!(line.contains("'tcsh'"), "{line}");
}

/// Ask fdiff for candidates the way the fish script does.
fn candidates(shell: &str, words: &[&str]) -> Vec<String> {
    let mut c = fdiff_cmd(&[]);
    c.arg("--")
        .arg("fdiff")
        .args(words)
        .env("FDIFF_COMPLETE", shell);
    if shell == "bash" {
        c.env("_CLAP_COMPLETE_INDEX", (words.len()).to_string())
            .env("_CLAP_IFS", "\n");
    }
    let o = c.output().expect("fdiff");
    assert!(o.status.success(), "{}", show(&o));
    stdout_of(&o).lines().map(str::to_owned).collect()
}

#[test]
fn issue14_pid_completion_offers_a_running_process_with_its_name() {
    let fx = Fixture::new(&[]);
    let pid = fx.pid.to_string();
    let prefix = &pid[..pid.len() - 1];
    let want = format!("{pid}\t{FIXTURE_NAME}");
    let fish = candidates("fish", &["--pid", prefix]);
    assert!(fish.contains(&want), "{want:?} not in {fish:?}");
    assert!(fish.iter().all(|c| c.starts_with(prefix)), "{fish:?}");
    let short = candidates("fish", &["snapshot", "-p", prefix]);
    assert!(short.contains(&want), "{want:?} not in {short:?}");
}

#[test]
fn issue14_name_completion_offers_process_names() {
    // A process with a name of this run's own (comm is the name it was executed by), so no
    // other run of the suite can match it.
    let dir = tempfile::tempdir().expect("tempdir");
    let name = format!("i14n{}", std::process::id());
    let link = dir.path().join(&name);
    std::os::unix::fs::symlink(fdiff_fixture::exe(), &link).expect("symlink");
    let fx = Fixture::spawn(Command::new(&link));
    assert!(wait_for(Duration::from_secs(20), || {
        std::fs::read_to_string(format!("/proc/{}/comm", fx.pid))
            .is_ok_and(|c| c.trim_end() == name)
    }));
    let got = candidates("fish", &["--name", &name[..6]]);
    assert_eq!(got.iter().filter(|c| **c == name).count(), 1, "{got:?}");
    assert!(got.iter().all(|c| c.starts_with(&name[..6])), "{got:?}");
    drop(fx);
}

#[test]
fn issue14_bash_script_completes_pids_in_a_real_bash() {
    if Command::new("bash").arg("--version").output().is_err() {
        println!("skip: bash is not installed");
        return;
    }
    let fx = Fixture::new(&[]);
    let pid = fx.pid.to_string();
    let bin_dir = Path::new(FDIFF).parent().expect("bin dir");
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    // What bash does on `fdiff --pid 12<Tab>`: the script's function fills COMPREPLY.
    let script = format!(
        "source <(fdiff completions bash) && complete -p fdiff && \
         COMP_WORDS=(fdiff --pid {pid}) COMP_CWORD=2 COMP_TYPE=9 && \
         _clap_complete_fdiff fdiff {pid} --pid && printf 'reply:%s\\n' \"${{COMPREPLY[@]}}\""
    );
    let o = Command::new("bash")
        .args(["--norc", "-c", &script])
        .env("PATH", path)
        .output()
        .expect("bash");
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{out}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(out.contains("-F _clap_complete_fdiff fdiff"), "{out}");
    assert!(
        out.lines().any(|l| l.trim_end() == format!("reply:{pid}")),
        "{out}"
    );
}

#[test]
fn issue14_generate_into_an_unwritable_place_is_one_line() {
    let o = fdiff(&["__generate", "/proc/self/no\nsuch"]);
    let line = assert_error(&o, 1);
    assert!(line.contains("no\\nsuch"), "{line}");
}
