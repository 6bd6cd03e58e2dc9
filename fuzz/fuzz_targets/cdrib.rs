#![no_main]
//! The CDRIB importer: train/valid/test of both domains, split at `\n---\n`.
use libfuzzer_sys::fuzz_target;
use warmstart_fuzz::{quiet, scratch, write_parts};

fuzz_target!(|data: &[u8]| {
    let dir = scratch().join("cdrib");
    let names =
        ["game/train.txt", "game/valid.txt", "game/test.txt", "video/train.txt", "video/valid.txt", "video/test.txt"];
    write_parts(&dir, &names, data);
    let _ = warmstart_ingest::cdrib::import(&dir, warmstart_ingest::cdrib::OVERLAP_USERS, false, &quiet());
});
