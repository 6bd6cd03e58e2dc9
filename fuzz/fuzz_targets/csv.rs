#![no_main]
//! Generic CSV import, as products and as interactions, with a column map.
use libfuzzer_sys::fuzz_target;
use warmstart_fuzz::{quiet, scratch, write_parts};
use warmstart_ingest::generic::{import_csv, parse_column_map, GenericOptions, RecordType};

fuzz_target!(|data: &[u8]| {
    let dir = scratch();
    write_parts(dir, &["in.csv"], data);
    let path = dir.join("in.csv");
    let products = GenericOptions { default_site: Some("s".into()), ..Default::default() };
    let _ = import_csv(&path, &products, &quiet());
    let mut events =
        GenericOptions { records: RecordType::Interactions, default_site: Some("s".into()), ..Default::default() };
    if let Ok(map) = parse_column_map("user=u,product=p,timestamp=t") {
        events.column_map = map;
    }
    let _ = import_csv(&path, &events, &quiet());
});
