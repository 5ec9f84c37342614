//! Fuzz target: arbitrary bytes through fdiff's fdinfo parser (see `fdiff_core::inputcheck`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = fdiff_core::inputcheck::fdinfo(data);
});
