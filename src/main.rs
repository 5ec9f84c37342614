//! fdiff binary entry point (placeholder: only the hidden `__fixture` subcommand for now).

use std::path::PathBuf;

fn main() {
    let mut args = std::env::args_os().skip(1);
    if args.next().is_none_or(|a| a != "__fixture") {
        return;
    }
    let mut fa = fdiff::fixture::FixtureArgs::default();
    while let Some(a) = args.next() {
        let value = args.next();
        match (a.to_str(), value) {
            (Some("--dir"), Some(v)) => fa.dir = Some(PathBuf::from(v)),
            (Some("--run"), Some(v)) => match v.into_string() {
                Ok(s) => fa.schedules.push(s),
                Err(_) => usage(),
            },
            _ => usage(),
        }
    }
    std::process::exit(fdiff::fixture::run(fa));
}

fn usage() -> ! {
    eprintln!("usage: fdiff __fixture [--dir DIR] [--run SCHEDULE]...");
    std::process::exit(2);
}
