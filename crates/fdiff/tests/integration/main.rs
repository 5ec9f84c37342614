//! Integration tests of the fdiff binary, driven against fixture processes (the
//! `fdiff-fixture` crate).

mod common;
mod errors;
mod issue10_layout;
mod issue10_source;
mod issue11_html;
mod issue11_tui;
mod issue12_bpf;
mod issue12_pyframes;
mod issue12_stacks;
mod issue13_serve;
mod issue14_packaging;
mod issue16_decode;
mod issue8_pools;
mod issue9_fuse;
mod issue9_fuzz;
mod issue9_input;
mod issue9_source;
mod offline;
mod procs;
mod snapshot;
mod watch;
