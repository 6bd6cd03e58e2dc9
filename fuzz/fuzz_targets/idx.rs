#![no_main]
//! IDX image and label files (Fashion-MNIST), plain or gzip.
use libfuzzer_sys::fuzz_target;
use warmstart_fuzz::{scratch, write_parts};

fuzz_target!(|data: &[u8]| {
    let dir = scratch();
    write_parts(dir, &["in.idx"], data);
    let path = dir.join("in.idx");
    let _ = warmstart_ingest::idx::read_idx_images(&path, Some(1000));
    let _ = warmstart_ingest::idx::read_idx_labels(&path, None);
});
