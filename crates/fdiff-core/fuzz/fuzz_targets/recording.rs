//! Fuzz target: arbitrary bytes through fdiff's recording reader (see `fdiff_core::inputcheck`, rendered by `fdiff::inputcheck`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = fdiff::inputcheck::recording(data);
});
