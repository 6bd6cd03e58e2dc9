#![no_main]
//! The MovieLens 100K importer: u.item and u.data, split at `\n---\n`.
use libfuzzer_sys::fuzz_target;
use warmstart_fuzz::{quiet, scratch, write_parts};

fuzz_target!(|data: &[u8]| {
    let dir = scratch().join("movielens");
    write_parts(&dir, &["u.item", "u.data"], data);
    let _ = warmstart_ingest::movielens::import(&dir, false, &quiet());
});
