use std::path::PathBuf;

use super::*;

/// Small deterministic generator (splitmix64 + Box-Muller) so tests need no extra crates.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn unit(&mut self) -> f64 {
        ((self.next() >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }
    fn gauss(&mut self) -> f32 {
        ((-2.0 * self.unit().ln()).sqrt() * (std::f64::consts::TAU * self.unit()).cos()) as f32
    }
}

/// `n` vectors around 40 cluster centres (so the data has structure, like embeddings). The
/// centres depend only on `dim`, so every seed draws from the same mixture (queries included).
fn clustered(n: usize, dim: usize, seed: u64) -> Vec<f32> {
    let mut crng = Rng(dim as u64);
    let centres: Vec<f32> = (0..40 * dim).map(|_| crng.gauss()).collect();
    let mut rng = Rng(seed);
    let mut out = Vec::with_capacity(n * dim);
    for _ in 0..n {
        let c = (rng.next() % 40) as usize;
        for j in 0..dim {
            out.push(centres[c * dim + j] + 0.45 * rng.gauss());
        }
    }
    out
}

fn params(seed: u64) -> HnswParams {
    HnswParams::builder().m(12).ef_construction(100).ef_search(64).seed(seed).build().expect("valid params")
}

fn build(metric: Metric, n: usize, dim: usize) -> (Hnsw, Vec<f32>) {
    let data = clustered(n, dim, 7);
    let keys: Vec<u32> = (0..n as u32).map(|i| i * 3 + 1).collect();
    (Hnsw::build(&params(42), metric, dim, &keys, &data).expect("build"), data)
}

fn tmp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("warmstart-index-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

fn recall(index: &Hnsw, queries: &[f32], k: usize, ef: usize) -> f64 {
    let mut hit = 0;
    let mut total = 0;
    for q in queries.chunks_exact(index.dim()) {
        let truth: Vec<u32> = index.exact_search(q, k).expect("exact").iter().map(|r| r.0).collect();
        let got = index.search(q, k, Some(ef)).expect("search");
        hit += got.iter().filter(|r| truth.contains(&r.0)).count();
        total += truth.len();
    }
    hit as f64 / total as f64
}

#[test]
fn recall_at_10_both_metrics() {
    for metric in [Metric::Cosine, Metric::InnerProduct] {
        let (index, _) = build(metric, 5000, 64);
        assert_eq!(index.len(), 5000);
        let queries = clustered(200, 64, 99);
        let r = recall(&index, &queries, 10, 64);
        assert!(r >= 0.95, "{metric:?}: recall@10 {r}");
        // Results are sorted, best first, and similarities match the stored vectors.
        let q = &queries[..64];
        let res = index.search(q, 10, None).expect("search");
        assert_eq!(res.len(), 10);
        assert!(res.windows(2).all(|w| w[0].1 >= w[1].1));
        let mut qn = q.to_vec();
        if metric == Metric::Cosine {
            distance::normalize(&mut qn);
        }
        let v = index.vector(res[0].0).expect("stored");
        assert!((distance::dot(&qn, &v) - res[0].1).abs() < 1e-4);
    }
}

#[test]
fn save_open_gives_identical_results() {
    let dir = tmp_dir("roundtrip");
    let path = dir.join("idx.wsann");
    let (index, _) = build(Metric::Cosine, 2000, 32);
    index.save(&path).expect("save");
    let opened = Hnsw::open(&path).expect("open");
    assert_eq!(opened.len(), index.len());
    assert_eq!(opened.dim(), 32);
    assert_eq!(opened.metric(), Metric::Cosine);
    assert_eq!(opened.params(), index.params());
    for q in clustered(100, 32, 5).chunks_exact(32) {
        assert_eq!(index.search(q, 10, Some(40)).expect("a"), opened.search(q, 10, Some(40)).expect("b"));
        assert_eq!(index.exact_search(q, 5).expect("a"), opened.exact_search(q, 5).expect("b"));
    }
    assert_eq!(index.vector(4), opened.vector(4));
    assert!(opened.memory_bytes() > 2000 * 32 * 4);
    // No temporary files left behind.
    assert_eq!(std::fs::read_dir(&dir).expect("dir").count(), 1);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn upsert_and_remove_after_open_then_save_again() {
    let dir = tmp_dir("delta");
    let path = dir.join("idx.wsann");
    let (index, data) = build(Metric::InnerProduct, 1500, 16);
    index.save(&path).expect("save");
    let mut opened = Hnsw::open(&path).expect("open");

    // New key: found at once as its own nearest neighbour.
    let fresh: Vec<f32> = (0..16).map(|i| if i == 3 { 40.0 } else { 0.5 }).collect();
    opened.upsert(999_999, &fresh).expect("upsert");
    assert!(opened.contains(999_999));
    assert_eq!(opened.search(&fresh, 1, None).expect("search")[0].0, 999_999);
    assert_eq!(opened.segment_count(), 2);

    // Existing (mapped) key replaced: the old vector no longer finds it under the old position.
    let replaced = 1; // key of row 0
    let newv: Vec<f32> = (0..16).map(|i| if i == 7 { -40.0 } else { 0.1 }).collect();
    opened.upsert(replaced, &newv).expect("replace");
    assert_eq!(opened.len(), 1501);
    assert_eq!(opened.vector(replaced).as_deref(), Some(&newv[..]));
    assert_eq!(opened.search(&newv, 1, None).expect("search")[0].0, replaced);
    let old_hits = opened.search(&data[..16], 2000, Some(2000)).expect("search");
    assert_eq!(old_hits.iter().filter(|r| r.0 == replaced).count(), 1);

    // Removal from the mapped base and from the delta.
    assert!(opened.remove(4));
    assert!(!opened.remove(4));
    assert!(opened.remove(999_999));
    assert!(!opened.contains(4) && !opened.contains(999_999));
    opened.upsert(777, &fresh).expect("upsert");

    opened.save(&path).expect("save again");
    let reopened = Hnsw::open(&path).expect("reopen");
    assert_eq!(reopened.len(), opened.len());
    assert_eq!(reopened.search(&fresh, 1, None).expect("s")[0].0, 777);
    assert_eq!(reopened.vector(replaced).as_deref(), Some(&newv[..]));
    assert!(!reopened.contains(4) && !reopened.contains(999_999));
    for q in clustered(50, 16, 3).chunks_exact(16) {
        assert_eq!(opened.search(q, 10, None).expect("a"), reopened.search(q, 10, None).expect("b"));
    }

    // Compaction keeps the same live set in one segment.
    let mut compacted = Hnsw::open(&path).expect("reopen");
    compacted.compact().expect("compact");
    assert_eq!(compacted.segment_count(), 1);
    assert_eq!(compacted.len(), reopened.len());
    assert_eq!(compacted.search(&fresh, 1, None).expect("s")[0].0, 777);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn removed_keys_are_never_returned() {
    let (mut index, _) = build(Metric::Cosine, 2000, 24);
    let removed: Vec<u32> = (0..2000u32).filter(|i| i % 3 == 0).map(|i| i * 3 + 1).collect();
    for &k in &removed {
        assert!(index.remove(k));
    }
    assert_eq!(index.len(), 2000 - removed.len());
    let queries = clustered(100, 24, 11);
    for q in queries.chunks_exact(24) {
        for r in index.search(q, 50, Some(100)).expect("search") {
            assert!(!removed.contains(&r.0), "removed key {} returned", r.0);
        }
        assert!(index.exact_search(q, 50).expect("exact").iter().all(|r| !removed.contains(&r.0)));
    }
    // Recall among the survivors stays high.
    assert!(recall(&index, &queries, 10, 64) >= 0.9);
    // Removing everything leaves an empty index that still answers.
    for k in (0..2000u32).map(|i| i * 3 + 1) {
        index.remove(k);
    }
    assert!(index.is_empty());
    assert!(index.search(&queries[..24], 5, None).expect("search").is_empty());
}

#[test]
fn filtered_search_only_returns_allowed_keys() {
    let (index, _) = build(Metric::Cosine, 3000, 32);
    let allow = |key: u32| key.is_multiple_of(7);
    let mut hit = 0;
    let queries = clustered(50, 32, 21);
    for q in queries.chunks_exact(32) {
        let got = index.search_filtered(q, 10, Some(64), &allow).expect("search");
        assert_eq!(got.len(), 10);
        assert!(got.iter().all(|r| allow(r.0)));
        let truth = index.segments[0].view().exact(&distance_q(&index, q), 10, Some(&allow));
        let truth: Vec<u32> = truth.iter().map(|n| index.segments[0].view().keys[n.node as usize]).collect();
        hit += got.iter().filter(|r| truth.contains(&r.0)).count();
    }
    assert!(hit as f64 / 500.0 >= 0.9, "filtered recall {}", hit as f64 / 500.0);
    // A filter nothing passes gives nothing; one key passing finds exactly it.
    assert!(index.search_filtered(&queries[..32], 10, None, &|_| false).expect("s").is_empty());
    let one = index.search_filtered(&queries[..32], 10, None, &|k| k == 301).expect("s");
    assert_eq!(one.iter().map(|r| r.0).collect::<Vec<_>>(), vec![301]);
}

fn distance_q(index: &Hnsw, q: &[f32]) -> Vec<f32> {
    index.query(q).expect("query").into_owned()
}

#[test]
fn bad_inputs_are_errors() {
    let p = params(1);
    let data = clustered(10, 4, 1);
    let keys: Vec<u32> = (0..10).collect();
    assert!(Hnsw::build(&p, Metric::Cosine, 0, &[], &[]).is_err());
    assert!(Hnsw::build(&p, Metric::Cosine, 4, &keys, &data[..39]).is_err());
    let mut nan = data.clone();
    nan[4 * 6 + 2] = f32::NAN;
    let e = Hnsw::build(&p, Metric::Cosine, 4, &keys, &nan).expect_err("nan");
    assert!(e.to_string().contains("row 6") && e.to_string().contains("key 6"), "{e}");
    let mut inf = data.clone();
    inf[0] = f32::INFINITY;
    assert!(Hnsw::build(&p, Metric::InnerProduct, 4, &keys, &inf).is_err());
    let mut zero = data.clone();
    zero[8..12].fill(0.0);
    assert!(Hnsw::build(&p, Metric::Cosine, 4, &keys, &zero).is_err());
    assert!(Hnsw::build(&p, Metric::InnerProduct, 4, &keys, &zero).is_ok());
    let dup: Vec<u32> = (0..10).map(|i| i % 9).collect();
    assert!(Hnsw::build(&p, Metric::Cosine, 4, &dup, &data).expect_err("dup").to_string().contains("key 0"));

    let mut index = Hnsw::build(&p, Metric::Cosine, 4, &keys, &data).expect("build");
    assert!(matches!(index.search(&[1.0, 2.0, 3.0], 3, None), Err(Error::Dimension { expected: 4, got: 3 })));
    assert!(index.search(&[1.0, f32::NAN, 3.0, 4.0], 3, None).is_err());
    assert!(index.search_filtered(&[1.0; 5], 3, None, &|_| true).is_err());
    assert!(index.exact_search(&[1.0; 3], 3).is_err());
    assert!(index.upsert(3, &[1.0; 5]).is_err());
    assert!(index.upsert(3, &[f32::NAN; 4]).is_err());
    assert!(index.upsert(3, &[0.0; 4]).is_err());
    assert_eq!(index.len(), 10);
    assert!(index.search(&data[..4], 0, None).expect("k=0").is_empty());
    assert_eq!(index.search(&data[..4], 100, None).expect("k>n").len(), 10);

    assert!(HnswParams::builder().m(1).build().is_err());
    assert!(HnswParams::builder().m(16).ef_construction(8).build().is_err());
    assert!(HnswParams::builder().ef_search(0).build().is_err());
    assert!(Hnsw::open(std::path::Path::new("/nonexistent/dir/x.wsann")).is_err());
}

#[test]
fn corrupt_or_truncated_files_are_errors_not_panics() {
    let dir = tmp_dir("corrupt");
    let path = dir.join("idx.wsann");
    let (mut index, _) = build(Metric::Cosine, 300, 8);
    index.remove(4);
    index.save(&path).expect("save");
    let good = std::fs::read(&path).expect("read");
    let bad = dir.join("bad.wsann");
    let check = |bytes: &[u8], what: &str| {
        std::fs::write(&bad, bytes).expect("write");
        match Hnsw::open(&bad) {
            Err(e) => assert!(e.to_string().contains("bad.wsann"), "{what}: error does not name the file: {e}"),
            Ok(opened) => {
                // Only damage inside vector values can go unnoticed; searching must still work.
                let _ = opened.search(&[0.5; 8], 5, None).expect("search");
            }
        }
    };
    check(&[], "empty");
    check(b"hello, world", "garbage");
    for cut in [1, 64, 127, 128, 200, good.len() / 3, good.len() / 2, good.len() - 1] {
        std::fs::write(&bad, &good[..cut]).expect("write");
        assert!(Hnsw::open(&bad).is_err(), "truncated to {cut} opened");
    }
    let mut longer = good.clone();
    longer.extend_from_slice(&[0; 64]);
    std::fs::write(&bad, &longer).expect("write");
    assert!(Hnsw::open(&bad).is_err());
    // Flip bytes all over the file (header, table, links, lookup, tombstones, vectors).
    let vectors_start = good.len() - 300 * 8 * 4;
    for pos in (0..good.len()).step_by(37).chain(0..200) {
        let mut b = good.clone();
        b[pos] ^= 0x5a;
        if pos < vectors_start {
            std::fs::write(&bad, &b).expect("write");
            assert!(Hnsw::open(&bad).is_err(), "flip at {pos} of {} was not detected", good.len());
        } else {
            check(&b, "vector flip");
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn deterministic_for_a_seed_whatever_the_thread_count() {
    let data = clustered(3000, 16, 5);
    let keys: Vec<u32> = (0..3000).collect();
    let run = |threads: usize, seed: u64| {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().expect("pool");
        let index = pool.install(|| Hnsw::build(&params(seed), Metric::Cosine, 16, &keys, &data)).expect("build");
        clustered(100, 16, 8)
            .chunks_exact(16)
            .map(|q| index.search(q, 10, Some(20)).expect("search"))
            .collect::<Vec<_>>()
    };
    let a = run(1, 42);
    assert_eq!(a, run(2, 42));
    assert_eq!(a, run(3, 42));
    assert_ne!(a, run(2, 43));
}

#[test]
fn empty_index_and_upserts_into_it() {
    let mut index = Hnsw::build(&params(3), Metric::InnerProduct, 3, &[], &[]).expect("empty");
    assert!(index.is_empty());
    assert!(index.search(&[1.0, 0.0, 0.0], 5, None).expect("s").is_empty());
    for i in 0..200u32 {
        let f = i as f32;
        index.upsert(i, &[f.sin(), f.cos(), 1.0]).expect("upsert");
    }
    index.upsert(5, &[9.0, 9.0, 9.0]).expect("replace");
    assert_eq!(index.len(), 200);
    assert_eq!(index.search(&[1.0, 1.0, 1.0], 1, None).expect("s")[0].0, 5);
    assert_eq!(index.segment_count(), 1);
}

#[test]
fn shared_between_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Hnsw>();
    let (index, _) = build(Metric::Cosine, 1000, 16);
    let queries = clustered(64, 16, 4);
    let serial: Vec<_> = queries.chunks_exact(16).map(|q| index.search(q, 5, None).expect("s")).collect();
    let parallel: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = queries
            .chunks(16 * 16)
            .map(|chunk| {
                let index = &index;
                s.spawn(move || {
                    chunk.chunks_exact(16).map(|q| index.search(q, 5, None).expect("s")).collect::<Vec<_>>()
                })
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().expect("thread")).collect()
    });
    assert_eq!(serial, parallel);
}

#[test]
fn a_new_key_upserted_twice_into_a_fresh_delta() {
    let dir = tmp_dir("twice");
    let path = dir.join("idx.wsann");
    let (index, _) = build(Metric::Cosine, 1500, 16);
    index.save(&path).expect("save");
    let mut opened = Hnsw::open(&path).expect("open");
    let fresh: Vec<f32> = (0..16).map(|i| if i == 3 { 40.0 } else { 0.5 }).collect();
    opened.upsert(999_999, &fresh).expect("upsert");
    opened.upsert(999_999, &fresh).expect("upsert again");
    assert_eq!(opened.len(), 1501);
    assert_eq!(opened.search(&fresh, 1, None).expect("search")[0].0, 999_999);
    opened.upsert(999_999, &fresh).expect("and again");
    assert_eq!(opened.search(&fresh, 3, None).expect("search")[0].0, 999_999);
    let _ = std::fs::remove_dir_all(&dir);
}
