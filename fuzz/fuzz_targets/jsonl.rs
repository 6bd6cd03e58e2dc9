#![no_main]
//! Generic JSON Lines import (products and interactions), lenient and strict.
use libfuzzer_sys::fuzz_target;
use warmstart_fuzz::{quiet, scratch, write_parts};
use warmstart_ingest::generic::{import_jsonl, GenericOptions};

fuzz_target!(|data: &[u8]| {
    let dir = scratch();
    write_parts(dir, &["in.jsonl"], data);
    let path = dir.join("in.jsonl");
    let _ = import_jsonl(&path, &GenericOptions::default(), &quiet());
    let strict = GenericOptions { strict: true, default_site: Some("s".into()), ..Default::default() };
    let _ = import_jsonl(&path, &strict, &quiet());
});
