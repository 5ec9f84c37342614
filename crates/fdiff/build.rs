//! Build script: records the git commit the binary is built from (and whether the tree was
//! dirty) for `fdiff --version`, as `FDIFF_COMMIT`. It needs nothing: with no git, no `.git`
//! (a crate tarball) or a failing git it falls back to the tarball's `.cargo_vcs_info.json`,
//! then to "unknown"; it never fails the build.

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    println!("cargo:rerun-if-env-changed=FDIFF_COMMIT");
    // A packager building from a tarball can say what it was built from.
    let commit = std::env::var("FDIFF_COMMIT")
        .ok()
        .filter(|c| !c.trim().is_empty())
        .map(|c| c.trim().to_owned())
        .or_else(|| from_git(&manifest))
        .or_else(|| from_vcs_info(&manifest))
        .unwrap_or_else(|| "unknown".to_owned());
    println!("cargo:rustc-env=FDIFF_COMMIT={commit}");
}

fn git(dir: &Path, args: &[&str]) -> Option<String> {
    // --no-optional-locks: `git status` would otherwise rewrite the index to refresh its stat
    // cache (always, in a fresh clone), and the index is watched below: every build would then
    // run this script again and rebuild the crate, a long LTO link in release.
    let out = Command::new("git")
        .arg("--no-optional-locks")
        .arg("-C")
        .arg(dir)
        .args(args)
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    Some(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// `abcdef123456` or `abcdef123456-dirty` from the repository around the crate.
fn from_git(manifest: &Path) -> Option<String> {
    let hash = git(manifest, &["rev-parse", "--short=12", "HEAD"])?;
    if hash.is_empty() {
        return None;
    }
    // Build again when HEAD moves (a commit, a checkout) or the index changes (git add); the
    // crates' sources are watched too, since an edit makes the tree dirty without touching git.
    for p in ["HEAD", "index"] {
        if let Some(path) = git(manifest, &["rev-parse", "--git-path", p]) {
            println!(
                "cargo:rerun-if-changed={}",
                absolute(manifest, &path).display()
            );
        }
    }
    if let Some(head_ref) = git(manifest, &["symbolic-ref", "-q", "HEAD"])
        && let Some(path) = git(manifest, &["rev-parse", "--git-path", &head_ref])
    {
        println!(
            "cargo:rerun-if-changed={}",
            absolute(manifest, &path).display()
        );
    }
    if let Some(top) = git(manifest, &["rev-parse", "--show-toplevel"]) {
        let top = PathBuf::from(top);
        for dir in ["crates", "Cargo.toml", "Cargo.lock"] {
            let p = top.join(dir);
            if p.exists() {
                println!("cargo:rerun-if-changed={}", p.display());
            }
        }
    }
    // Untracked files do not make a build dirty: only changes to what is committed.
    let dirty = git(
        manifest,
        &[
            "status",
            "--porcelain",
            "--untracked-files=no",
            "--ignore-submodules",
        ],
    )
    .is_some_and(|s| !s.is_empty());
    Some(if dirty { format!("{hash}-dirty") } else { hash })
}

fn absolute(base: &Path, p: &str) -> PathBuf {
    let p = Path::new(p);
    if p.is_absolute() {
        p.to_owned()
    } else {
        base.join(p)
    }
}

/// `cargo package` writes the commit into the tarball: `{"git":{"sha1":"…","dirty":true},…}`.
/// Read without a JSON parser, so the build script needs no dependency.
fn from_vcs_info(manifest: &Path) -> Option<String> {
    let text = std::fs::read_to_string(manifest.join(".cargo_vcs_info.json")).ok()?;
    let after = text.split("\"sha1\"").nth(1)?;
    let hash: String = after
        .trim_start_matches([' ', ':', '"'])
        .chars()
        .take_while(char::is_ascii_hexdigit)
        .take(12)
        .collect();
    if hash.is_empty() {
        return None;
    }
    let dirty = text.contains("\"dirty\": true") || text.contains("\"dirty\":true");
    Some(if dirty { format!("{hash}-dirty") } else { hash })
}
