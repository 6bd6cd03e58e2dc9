//! Batch-level parallelism for encoders on the CPU.
//!
//! candle parallelises inside each operation (matrix products on a thread pool, element-wise
//! operations on a barrier pool). For a small model like MiniLM on short texts the per-operation
//! hand-offs cost more than they give: two single-threaded workers, each encoding its own
//! batches, measured twice the throughput of one two-threaded encoder on 2 cores. candle reads
//! its thread counts from `RAYON_NUM_THREADS` / `CANDLE_NUM_THREADS`, so the workers run with
//! both set to 1 and the previous values come back afterwards (rayon's global pool is built
//! first, so other parallel work in the process keeps every core).

use std::ffi::OsString;
use std::sync::mpsc;
use std::sync::Mutex;

use crate::{EncodeStats, Result, TextEncoder};

static ENV_LOCK: Mutex<()> = Mutex::new(());

/// While alive, candle's kernels run on the calling thread.
struct SingleThreadedKernels {
    saved: Vec<(&'static str, Option<OsString>)>,
    _lock: std::sync::MutexGuard<'static, ()>,
}

impl SingleThreadedKernels {
    fn enter() -> SingleThreadedKernels {
        let lock = ENV_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        let _ = rayon::current_num_threads(); // build the global pool with its normal size first
        let mut saved = Vec::new();
        for var in ["RAYON_NUM_THREADS", "CANDLE_NUM_THREADS"] {
            saved.push((var, std::env::var_os(var)));
            std::env::set_var(var, "1");
        }
        SingleThreadedKernels { saved, _lock: lock }
    }
}

impl Drop for SingleThreadedKernels {
    fn drop(&mut self) {
        for (var, old) in self.saved.drain(..) {
            match old {
                Some(v) => std::env::set_var(var, v),
                None => std::env::remove_var(var),
            }
        }
    }
}

/// Encodes `batches` on `workers` threads (1 = the plain multi-threaded path) and hands
/// each batch's result to `done(batch index, result)` on the calling thread as it arrives,
/// so the caller can show progress and store vectors while the workers go on. Stops at the
/// first error `done` returns.
pub fn encode_batches<E>(
    encoder: &dyn TextEncoder,
    batches: &[Vec<&str>],
    workers: usize,
    mut done: impl FnMut(usize, Result<(Vec<f32>, EncodeStats)>) -> std::result::Result<(), E>,
) -> std::result::Result<(), E> {
    if workers <= 1 || batches.len() <= 1 {
        for (i, b) in batches.iter().enumerate() {
            done(i, encoder.encode_texts(b))?;
        }
        return Ok(());
    }
    let _single = SingleThreadedKernels::enter();
    let next = std::sync::atomic::AtomicUsize::new(0);
    let stop = std::sync::atomic::AtomicBool::new(false);
    let (tx, rx) = mpsc::channel();
    std::thread::scope(|s| {
        for _ in 0..workers.min(batches.len()) {
            let (tx, next, stop) = (tx.clone(), &next, &stop);
            s.spawn(move || loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= batches.len() || stop.load(std::sync::atomic::Ordering::Relaxed) {
                    break;
                }
                if tx.send((i, encoder.encode_texts(&batches[i]))).is_err() {
                    break;
                }
            });
        }
        drop(tx);
        for (i, r) in rx {
            if let Err(e) = done(i, r) {
                stop.store(true, std::sync::atomic::Ordering::Relaxed);
                return Err(e);
            }
        }
        Ok(())
    })
}
