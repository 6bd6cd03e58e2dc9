//! Multi-threaded SGD without shared writes (stratified, as in distributed SGD for matrix
//! factorisation, Gemulla et al. 2011): each epoch users and items are dealt at random into
//! `T` blocks each; in sub-epoch `s` thread `t` trains on the interactions of user block `t`
//! with item block `(t + s) mod T`, drawing negatives from that item block. In a sub-epoch no
//! two threads touch the same user or item row, so every thread works on plain slices at full
//! single-thread speed, and a seed with a thread count gives one model. Over an epoch every
//! interaction's stratum is visited once; the blocks are redealt every epoch, so every pair of
//! items meets as positive and negative across epochs.

use warmstart_core::{CsrMatrix, Rng};

use super::{BprConfig, SampledLoss, SgdStep};
use crate::simd;

/// A random permutation of `0..n` (new position → old index) and its inverse.
fn deal(n: usize, rng: &mut Rng) -> (Vec<u32>, Vec<u32>) {
    let mut order: Vec<u32> = (0..n as u32).collect();
    for k in (1..n).rev() {
        order.swap(k, rng.below(k + 1));
    }
    let mut pos = vec![0u32; n];
    for (p, &o) in order.iter().enumerate() {
        pos[o as usize] = p as u32;
    }
    (order, pos)
}

/// Block boundaries of `n` rows in `t` nearly equal blocks.
fn bounds(n: usize, t: usize) -> Vec<usize> {
    (0..=t).map(|b| b * n / t).collect()
}

/// Splits `v` (rows of `width`) at row boundaries into one mutable slice per block.
fn split<'a, T>(mut v: &'a mut [T], bounds: &[usize], width: usize) -> Vec<Option<&'a mut [T]>> {
    let mut out = Vec::with_capacity(bounds.len() - 1);
    for w in bounds.windows(2) {
        let (head, tail) = v.split_at_mut((w[1] - w[0]) * width);
        out.push(Some(head));
        v = tail;
    }
    out
}

/// Rows of `v` (width `f`) in the order `order` (new position → old row).
fn permute(v: &[f32], order: &[u32], f: usize) -> Vec<f32> {
    let mut out = Vec::with_capacity(v.len());
    for &o in order {
        out.extend_from_slice(&v[o as usize * f..(o as usize + 1) * f]);
    }
    out
}

pub(super) fn sgd(
    c: &BprConfig,
    m: &CsrMatrix,
    x: Vec<f32>,
    y: Vec<f32>,
    seconds: &mut Vec<f64>,
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let (f, lr, reg) = (c.factors, c.learning_rate, c.regularization);
    let (n_users, n_items) = (m.n_rows(), m.n_cols());
    let t_count = c.threads.min(n_users).min(n_items).max(1);
    let mut rng = Rng::new(c.seed ^ 0x5354_5241_5449_4659);
    // rows kept in the current deal's order; `*_order` maps back to the original ids
    let (mut x, mut y) = (x, y);
    let mut b = vec![0f32; n_items];
    let mut u_order: Vec<u32> = (0..n_users as u32).collect();
    let mut i_order: Vec<u32> = (0..n_items as u32).collect();
    let (ub, ib) = (bounds(n_users, t_count), bounds(n_items, t_count));
    let block = |bounds: &[usize], p: u32| bounds.partition_point(|&e| e <= p as usize) - 1;
    let mut epoch_loss = Vec::with_capacity(c.epochs);
    for epoch in 0..c.epochs {
        let started = std::time::Instant::now();
        // redeal: new positions of the current rows
        let (nu, _) = deal(n_users, &mut rng);
        let (ni, _) = deal(n_items, &mut rng);
        x = permute(&x, &nu, f);
        y = permute(&y, &ni, f);
        b = ni.iter().map(|&o| b[o as usize]).collect();
        u_order = nu.iter().map(|&o| u_order[o as usize]).collect();
        i_order = ni.iter().map(|&o| i_order[o as usize]).collect();
        let mut u_pos = vec![0u32; n_users];
        for (p, &o) in u_order.iter().enumerate() {
            u_pos[o as usize] = p as u32;
        }
        let mut i_pos = vec![0u32; n_items];
        for (p, &o) in i_order.iter().enumerate() {
            i_pos[o as usize] = p as u32;
        }
        // the interactions of each (user block, item block), as (user, item) positions
        let mut strata: Vec<Vec<(u32, u32)>> = vec![Vec::new(); t_count * t_count];
        for (u, &pu) in u_pos.iter().enumerate() {
            for &i in m.row_indices(u) {
                let pi = i_pos[i as usize];
                strata[block(&ub, pu) * t_count + block(&ib, pi)].push((pu, pi));
            }
        }
        let mut loss = SampledLoss::default();
        for sub in 0..t_count {
            let mut xs = split(&mut x, &ub, f);
            let mut ys = split(&mut y, &ib, f);
            let mut bs = split(&mut b, &ib, 1);
            let parts: Vec<SampledLoss> = std::thread::scope(|scope| {
                let handles: Vec<_> = (0..t_count)
                    .map(|t| {
                        let j_block = (t + sub) % t_count;
                        let xb = xs[t].take().unwrap_or_default();
                        let yb = ys[j_block].take().unwrap_or_default();
                        let bb = bs[j_block].take().unwrap_or_default();
                        let stratum = &strata[t * t_count + j_block];
                        let (u0, i0, i_len) = (ub[t], ib[j_block], ib[j_block + 1] - ib[j_block]);
                        let (u_order, i_order) = (&u_order, &i_order);
                        let seed = c.seed ^ ((epoch * t_count + sub) as u64) << 20 ^ t as u64;
                        scope.spawn(move || {
                            let mut rng = Rng::new(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15));
                            let mut loss = SampledLoss::default();
                            let (mut xu, mut yi, mut yj) = (vec![0f32; f], vec![0f32; f], vec![0f32; f]);
                            for s in 0..stratum.len() {
                                let (pu, pi) = stratum[rng.below(stratum.len())];
                                let own = m.row_indices(u_order[pu as usize] as usize);
                                if own.len() >= n_items {
                                    continue;
                                }
                                // a negative in this item block that the user did not touch
                                // (a block the user fills gives up after a few draws)
                                let mut pj = None;
                                for _ in 0..64 {
                                    let cand = i0 + rng.below(i_len);
                                    if own.binary_search(&i_order[cand]).is_err() {
                                        pj = Some(cand);
                                        break;
                                    }
                                }
                                let Some(pj) = pj else { continue };
                                let (u, i, j) = (pu as usize - u0, pi as usize - i0, pj - i0);
                                xu.copy_from_slice(&xb[u * f..(u + 1) * f]);
                                yi.copy_from_slice(&yb[i * f..(i + 1) * f]);
                                yj.copy_from_slice(&yb[j * f..(j + 1) * f]);
                                let step = SgdStep { lr, reg, bias_diff: bb[i] - bb[j] };
                                let z = simd!(
                                    step.apply::<true>(&mut xu, &mut yi, &mut yj),
                                    step.apply::<false>(&mut xu, &mut yi, &mut yj)
                                );
                                loss.add(s, z);
                                xb[u * f..(u + 1) * f].copy_from_slice(&xu);
                                yb[i * f..(i + 1) * f].copy_from_slice(&yi);
                                yb[j * f..(j + 1) * f].copy_from_slice(&yj);
                                bb[i] += lr * (z - reg * bb[i]);
                                bb[j] += lr * (-z - reg * bb[j]);
                            }
                            loss
                        })
                    })
                    .collect();
                handles.into_iter().map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e))).collect()
            });
            for p in parts {
                loss.sum += p.sum;
                loss.n += p.n;
            }
        }
        epoch_loss.push(loss.mean());
        seconds.push(started.elapsed().as_secs_f64());
    }
    // back to the original item order
    let mut y_out = vec![0f32; y.len()];
    let mut b_out = vec![0f32; n_items];
    for (p, &o) in i_order.iter().enumerate() {
        y_out[o as usize * f..(o as usize + 1) * f].copy_from_slice(&y[p * f..(p + 1) * f]);
        b_out[o as usize] = b[p];
    }
    (y_out, b_out, epoch_loss)
}
