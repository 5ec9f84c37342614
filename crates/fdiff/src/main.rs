//! The fdiff binary: turns `fdiff::app::run`'s result into an exit code and one line on error.

use std::io::Write;

fn main() {
    let exit = match fdiff::app::run(std::env::args_os()) {
        Ok(exit) => exit,
        Err(e) => {
            if !e.message.is_empty() {
                // The last line of defence: whatever a message quotes, it prints as one line
                // that cannot drive the terminal.
                let msg = fdiff::util::escape_control(&e.message);
                let _ = writeln!(std::io::stderr().lock(), "fdiff: {msg}");
            }
            e.code
        }
    };
    std::process::exit(exit.code());
}
