//! The fixture process: `fdiff-fixture [--dir DIR] [--name NAME] [--limit N] [--run SCHEDULE]...`,
//! then one command per stdin line (see `fdiff_fixture::fixture`).

use fdiff_fixture::fixture::{FixtureArgs, run};
use std::path::PathBuf;

fn main() {
    let mut args = FixtureArgs::default();
    let mut it = std::env::args_os().skip(1);
    while let Some(a) = it.next() {
        let flag = a.to_string_lossy().into_owned();
        let Some(v) = it.next() else {
            eprintln!("fdiff-fixture: {flag:?} needs a value");
            std::process::exit(2);
        };
        match flag.as_str() {
            "--dir" => args.dir = Some(PathBuf::from(v)),
            "--run" => args.schedules.push(v.to_string_lossy().into_owned()),
            "--name" => args.name = Some(v.to_string_lossy().into_owned()),
            "--limit" => match v.to_string_lossy().parse() {
                Ok(n) => args.limit = Some(n),
                Err(_) => {
                    eprintln!("fdiff-fixture: bad --limit {v:?}");
                    std::process::exit(2);
                }
            },
            _ => {
                eprintln!("fdiff-fixture: unknown argument {flag:?}");
                std::process::exit(2);
            }
        }
    }
    std::process::exit(run(args));
}
