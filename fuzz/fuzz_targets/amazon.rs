#![no_main]
//! The Amazon Arts/Office importer: six files, split at `\n---\n`.
use libfuzzer_sys::fuzz_target;
use warmstart_fuzz::{quiet, scratch, write_parts};

fuzz_target!(|data: &[u8]| {
    let dir = scratch().join("amazon");
    let names = ["items_art.csv", "items_office.csv", "train.txt", "valid.txt", "test.txt", "users.txt"];
    write_parts(&dir, &names, data);
    let _ = warmstart_ingest::amazon::import(&dir, false, &quiet());
});
