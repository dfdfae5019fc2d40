//! The decoder on arbitrary bytes: gzip or not, UTF-8 or not, any framing. It must never panic;
//! `crates/ingest/src/mutations.rs` checks what it keeps of damaged real files.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = trawl_ingest::decode_file("fuzz", data.to_vec());
});
