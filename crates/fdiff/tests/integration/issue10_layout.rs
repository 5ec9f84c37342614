//! Issue 10 §1, the workspace: the test fixture is not part of the released binary, and the
//! demo's leaky program is a hidden mode of fdiff itself.

use crate::common::*;
use serde_json::json;

#[test]
fn issue10_1_fixture_is_an_unknown_command() {
    let o = fdiff(&["__fixture", "--run", "leak-file 10"]);
    let line = assert_error(&o, 2);
    assert!(line.contains("'__fixture'"), "{line}");
}

#[test]
fn issue10_1_demo_child_is_hidden_and_leaks_under_its_own_name() {
    let help = stdout_of(&fdiff(&["--help"]));
    assert!(
        !help.contains("__demo-child") && !help.contains("fixture"),
        "{help}"
    );
    let o = fdiff(&["demo", "--duration", "2s", "--quiet", "--format", "json"]);
    assert_eq!(code(&o), 0, "{}", show(&o));
    let r = json_out(&o);
    let p = &r["processes"][0];
    assert_eq!(p["comm"], json!("leaky-demo"), "{}", keys(&r));
    assert_eq!(p["fd_limit"]["soft"], json!(1024), "{}", keys(&r));
    let pid = p["pid"].as_i64().expect("pid") as i32;
    for needle in [
        "upload-*.pdf",
        "tcp -> ",
        "<- * ESTABLISHED",
        "eventfd",
        "churn-*.tmp",
    ] {
        group(&r, pid, needle);
    }
}
