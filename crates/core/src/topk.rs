//! The one top-k routine of the project.

use std::cmp::Ordering;

/// Indices of the `k` largest finite scores, best first; ties broken by the lower index so
/// the result is deterministic. Scores that are NaN or `-inf` are never returned.
pub fn top_k(scores: &[f32], k: usize) -> Vec<usize> {
    top_k_by(scores.len(), k, |i| scores[i])
}

/// Like [`top_k`], over `n` candidates whose score is given by `score(i)`.
pub fn top_k_by(n: usize, k: usize, score: impl Fn(usize) -> f32) -> Vec<usize> {
    if k == 0 || n == 0 {
        return Vec::new();
    }
    // Min-heap of (score, index) of size k, implemented on a Vec for speed.
    let mut heap: Vec<(f32, usize)> = Vec::with_capacity(k.min(n) + 1);
    let worse = |a: &(f32, usize), b: &(f32, usize)| -> bool {
        // true if a ranks below b
        match a.0.partial_cmp(&b.0).unwrap_or(Ordering::Equal) {
            Ordering::Less => true,
            Ordering::Greater => false,
            Ordering::Equal => a.1 > b.1,
        }
    };
    for i in 0..n {
        let s = score(i);
        if !s.is_finite() && s != f32::INFINITY {
            continue;
        }
        let cand = (s, i);
        if heap.len() < k {
            heap.push(cand);
            // sift up
            let mut c = heap.len() - 1;
            while c > 0 {
                let p = (c - 1) / 2;
                if worse(&heap[c], &heap[p]) {
                    heap.swap(c, p);
                    c = p;
                } else {
                    break;
                }
            }
        } else if worse(&heap[0], &cand) {
            heap[0] = cand;
            let len = heap.len();
            let mut p = 0;
            loop {
                let l = 2 * p + 1;
                let r = l + 1;
                let mut m = p;
                if l < len && worse(&heap[l], &heap[m]) {
                    m = l;
                }
                if r < len && worse(&heap[r], &heap[m]) {
                    m = r;
                }
                if m == p {
                    break;
                }
                heap.swap(p, m);
                p = m;
            }
        }
    }
    heap.sort_by(|a, b| {
        if worse(a, b) {
            Ordering::Greater
        } else if worse(b, a) {
            Ordering::Less
        } else {
            Ordering::Equal
        }
    });
    heap.into_iter().map(|(_, i)| i).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_largest_in_order_with_index_tiebreak() {
        let s = [0.1, 0.9, 0.5, 0.9, f32::NAN, -1.0];
        assert_eq!(top_k(&s, 3), vec![1, 3, 2]);
        assert_eq!(top_k(&s, 10), vec![1, 3, 2, 0, 5]);
        assert!(top_k(&s, 0).is_empty());
    }

    #[test]
    fn agrees_with_full_sort() {
        let mut x: u64 = 7;
        let s: Vec<f32> = (0..1000)
            .map(|_| {
                x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                ((x >> 40) % 97) as f32
            })
            .collect();
        let mut idx: Vec<usize> = (0..s.len()).collect();
        idx.sort_by(|&a, &b| s[b].partial_cmp(&s[a]).unwrap().then(a.cmp(&b)));
        assert_eq!(top_k(&s, 50), idx[..50].to_vec());
    }
}
