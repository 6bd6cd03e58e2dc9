#![no_main]
//! Product photos: the fuzz input is the one photo of a one-row fashion catalog, packed into a
//! real `images.tar.gz`, imported with decoding verified (what `warmstart ingest
//! fashion-products` does with every photo).
use std::io::Write;

use libfuzzer_sys::fuzz_target;
use warmstart_fuzz::{quiet, scratch};

fuzz_target!(|data: &[u8]| {
    let dir = scratch();
    std::fs::write(
        dir.join("styles.csv"),
        "id,gender,masterCategory,subCategory,articleType,baseColour,season,year,usage,productDisplayName\n\
         1,Men,Apparel,Topwear,Tshirts,Red,Summer,2012,Casual,Red tee\n",
    )
    .expect("a scratch file");
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let mut tar = tar::Builder::new(gz);
    let mut header = tar::Header::new_gnu();
    header.set_size(data.len() as u64);
    header.set_mode(0o644);
    header.set_cksum();
    tar.append_data(&mut header, "images/1.jpg", data).expect("a tar entry");
    let bytes = tar.into_inner().and_then(|gz| gz.finish()).expect("a tar.gz");
    std::fs::File::create(dir.join("images.tar.gz")).and_then(|mut f| f.write_all(&bytes)).expect("a scratch file");
    let opts = warmstart_ingest::fashion::FashionOptions { verify_images: true, ..Default::default() };
    let _ = warmstart_ingest::fashion::import(&dir.join("styles.csv"), &opts, &quiet());
});
