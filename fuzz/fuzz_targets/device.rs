#![no_main]
//! The browser extension's engine on untrusted input: pages of any shop (capture), downloads
//! from the network (`WSVEC001` vectors, `WSNBR001` neighbour lists) and ranking requests.
//! The first byte picks the surface.
use libfuzzer_sys::fuzz_target;
use warmstart_device::{capture, Device, RankRequest};
use warmstart_scoring::{NeighbourLists, SiteVectors};

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else { return };
    match pick % 4 {
        0 => {
            if let Ok(v) = SiteVectors::decode(rest) {
                assert_eq!(SiteVectors::decode(&v.encode(false)).map(|w| w.ids), Ok(v.ids));
            }
        }
        1 => {
            if let Ok(n) = NeighbourLists::decode(rest) {
                assert_eq!(NeighbourLists::decode(&n.encode()).map(|m| m.lists.len()), Ok(n.lists.len()));
            }
        }
        2 => {
            if let Ok(html) = std::str::from_utf8(rest) {
                let _ = capture(html, "http://shop.example/p/1", "shop");
            }
        }
        _ => {
            let mut d = Device::new();
            let shop = |ids: &[&str], rows: &[f32]| SiteVectors {
                dim: 2,
                ids: ids.iter().map(|s| s.to_string()).collect(),
                data: rows.to_vec(),
                prior: vec![0.5; ids.len()],
            };
            let _ = d.load_shop("a", &shop(&["x", "y"], &[1.0, 0.0, 0.0, 1.0]).encode(true), None);
            let _ = d.load_shop("b", &shop(&["p", "q", "r"], &[0.6, 0.8, 1.0, 0.0, 0.0, 1.0]).encode(false), None);
            let lists = NeighbourLists {
                targets: vec!["p".into(), "q".into(), "r".into()],
                sources: vec![("a".into(), "x".into())],
                lists: vec![vec![(0, 0.5), (2, 0.1)]],
            };
            let _ = d.load_neighbours("b", &lists.encode());
            if let Ok(req) = serde_json::from_slice::<RankRequest>(rest) {
                if let Ok(r) = d.rank(&req) {
                    assert!(r.items.len() <= req.k);
                }
            }
        }
    }
});
