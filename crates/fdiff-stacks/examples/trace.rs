//! Run a command under the stacks tracer with capture from the start and print what it
//! opened, by stack: `cargo run -p fdiff-stacks --example trace -- CMD ARGS…`.

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((prog, rest)) = args.split_first() else {
        eprintln!("usage: trace CMD [ARGS…]");
        std::process::exit(2);
    };
    let mut cmd = std::process::Command::new(prog);
    cmd.args(rest);
    let t = match fdiff_stacks::Tracer::spawn(cmd, fdiff_stacks::Arming::Now) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("trace: {e}");
            std::process::exit(1);
        }
    };
    while t.status().is_none() {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    t.with_store(|s| {
        let mut by: std::collections::BTreeMap<u32, u64> = Default::default();
        for o in s.open.values() {
            *by.entry(o.stack).or_default() += 1;
        }
        for (id, n) in by {
            println!("{n} open at:");
            for f in &s.stacks[id as usize].frames {
                println!("    {f}");
            }
        }
        for ((_, id, target), n) in &s.closed {
            println!("{n} closed ({target}) at:");
            for f in &s.stacks[*id as usize].frames {
                println!("    {f}");
            }
        }
        println!(
            "captured {} drops {:?} bytes {}",
            s.captured,
            s.drops,
            s.bytes()
        );
    });
}
