//! The fdiff binary: turns `fdiff::app::run`'s result into an exit code and one line on error.

use std::io::Write;

fn main() {
    let code = match fdiff::app::run(std::env::args_os()) {
        Ok(code) => code,
        Err(e) => {
            if !e.message.is_empty() {
                let _ = writeln!(std::io::stderr().lock(), "fdiff: {}", e.message);
            }
            e.code
        }
    };
    std::process::exit(code);
}
