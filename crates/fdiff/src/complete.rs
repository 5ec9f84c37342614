//! Shell completion: the scripts `fdiff completions SHELL` prints (and the .deb installs), and the
//! dynamic candidates for `--pid` (running pids with their names) and `--name` (process names).
//!
//! The scripts are clap_complete's dynamic ones: the shell calls fdiff back with
//! `FDIFF_COMPLETE=SHELL` set and the words typed so far, and fdiff answers from the same clap
//! definitions it parses with, so a script can never fall behind the options, and pids are the
//! ones running when Tab is pressed.

use clap::ValueEnum;
use clap_complete::engine::{ArgValueCandidates, CompletionCandidate};
use clap_complete::env::{Bash, EnvCompleter, Fish, Zsh};
use std::io::Write;

/// The environment variable that turns a run of fdiff into a completion request. Not clap's
/// default `COMPLETE`, which is too generic a name to find set by accident in a user's
/// environment.
pub const ENV_VAR: &str = "FDIFF_COMPLETE";

/// `fdiff completions --help`'s closing text: where to put the script.
pub const COMPLETIONS_AFTER_HELP: &str = "\
Install (the .deb does this for you):
  bash  fdiff completions bash > ~/.local/share/bash-completion/completions/fdiff
  zsh   fdiff completions zsh > ~/.zfunc/_fdiff   (with fpath+=(~/.zfunc) before compinit)
  fish  fdiff completions fish > ~/.config/fish/completions/fdiff.fish
The script runs 'fdiff' from PATH to complete.";

/// The shells fdiff has completion scripts for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
}

impl Shell {
    fn completer(self) -> &'static dyn EnvCompleter {
        match self {
            Shell::Bash => &Bash,
            Shell::Zsh => &Zsh,
            Shell::Fish => &Fish,
        }
    }

    /// Where a distribution installs this shell's script (relative to `/usr/share`), and the
    /// file name `__generate` writes it under.
    pub const fn file_name(self) -> &'static str {
        match self {
            Shell::Bash => "fdiff.bash",
            Shell::Zsh => "_fdiff",
            Shell::Fish => "fdiff.fish",
        }
    }
}

/// Write the completion script of `shell`. It calls `fdiff` by name (from PATH), never the path
/// this binary was run from, so a script generated at packaging time works once installed.
pub fn write_script(shell: Shell, w: &mut dyn Write) -> std::io::Result<()> {
    shell
        .completer()
        .write_registration(ENV_VAR, "fdiff", "fdiff", "fdiff", w)
}

/// Answer a completion request when [`ENV_VAR`] is set; `Ok(false)` for an ordinary run.
pub fn answer_request<I, T>(args: I) -> Result<bool, crate::error::Error>
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString>,
{
    if std::env::var_os(ENV_VAR).is_none_or(|v| v.is_empty() || v == "0") {
        return Ok(false);
    }
    let cwd = std::env::current_dir().ok();
    clap_complete::CompleteEnv::with_factory(<crate::cli::Cli as clap::CommandFactory>::command)
        .var(ENV_VAR)
        .bin("fdiff")
        .completer("fdiff")
        .try_complete(args, cwd.as_deref())
        .map_err(|e| {
            crate::error::Error::usage(format!(
                "completion request failed: {}",
                e.to_string().lines().next().unwrap_or("unknown shell")
            ))
        })
}

/// `--pid`: every running process as its pid, with its name as the help (zsh and fish show it
/// beside the pid).
pub fn pid_candidates() -> ArgValueCandidates {
    ArgValueCandidates::new(|| {
        processes()
            .map(|(pid, comm)| CompletionCandidate::new(pid.to_string()).help(Some(comm.into())))
            .collect::<Vec<_>>()
    })
}

/// `--name`: the distinct names of the running processes, sorted.
pub fn name_candidates() -> ArgValueCandidates {
    ArgValueCandidates::new(|| {
        let mut names: Vec<String> = processes().map(|(_, comm)| comm).collect();
        names.sort();
        names.dedup();
        names
            .into_iter()
            .map(CompletionCandidate::new)
            .collect::<Vec<_>>()
    })
}

/// The running processes as (pid, name), by pid. Unreadable entries (a process that exited
/// meanwhile) are left out: completion must never fail. A name is shown as the kernel has it,
/// with control characters escaped so a hostile `comm` cannot drive the terminal.
pub fn processes() -> impl Iterator<Item = (u32, String)> {
    let mut pids: Vec<u32> = std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    pids.sort_unstable();
    pids.into_iter().filter_map(|pid| {
        let comm = std::fs::read(format!("/proc/{pid}/comm")).ok()?;
        let comm = String::from_utf8_lossy(&comm);
        let comm = comm.strip_suffix('\n').unwrap_or(&comm);
        Some((pid, crate::util::escape_control(comm).into_owned()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issue14_processes_include_this_one_by_pid_and_name() {
        let me = std::process::id();
        let comm = std::fs::read_to_string("/proc/self/comm").unwrap_or_default();
        let found: Vec<_> = processes().filter(|(p, _)| *p == me).collect();
        assert_eq!(found, vec![(me, comm.trim_end().to_owned())]);
    }

    #[test]
    fn issue14_every_script_calls_fdiff_from_path_with_its_variable() {
        for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
            let mut buf = Vec::new();
            write_script(shell, &mut buf).unwrap_or_default();
            let s = String::from_utf8_lossy(&buf);
            assert!(s.contains(ENV_VAR), "{shell:?}: {s}");
            assert!(!s.contains("target/"), "{shell:?} names a build path: {s}");
        }
    }
}
