#![no_main]
//! Product extraction from saved pages: JSON-LD, microdata, OpenGraph.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = warmstart_ingest::html::extract(text);
    }
});
