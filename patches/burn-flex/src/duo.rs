//! Keel patch: a two-way split of one op between the calling thread and a spinning helper.
//!
//! A rayon `join` hands its second half to a worker that is usually asleep between ops, and
//! waking it costs more than a 256 × 128 × 128 product takes; measured on 2 cores, a GAN step
//! then runs slower with two threads than with one. The helper here spins for a short while
//! after each job, so during training it is awake when the next op arrives. When it is not (it
//! parked, another caller holds it, or it has not picked the job up by the time the caller is
//! done with its own half) the caller runs both halves itself: the split never waits on a
//! helper that has not started, and the result never depends on who ran which half.
//!
//! Used only inside a rayon pool of two threads or more, so a one-thread run is unchanged; ops
//! that split compute every output element exactly as unsplit (results are bit-identical).

use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::OnceLock;
use std::thread::{self, Thread};
use std::time::{Duration, Instant};

/// How long the helper spins without a job before it parks.
const SPIN: Duration = Duration::from_millis(2);

const IDLE: u8 = 0;
const POSTED: u8 = 1;
const RUNNING: u8 = 2;
const DONE: u8 = 3;
const PANICKED: u8 = 4;

type Job<'a> = dyn Fn(usize) + Sync + 'a;

struct Slot(UnsafeCell<Option<*const Job<'static>>>);
// SAFETY: written only by the caller that holds `BUSY` while `STATE` is IDLE, read only by the
// helper after it moved `STATE` from POSTED to RUNNING (release/acquire on `STATE`).
unsafe impl Sync for Slot {}

static STATE: AtomicU8 = AtomicU8::new(IDLE);
static BUSY: AtomicBool = AtomicBool::new(false);
static AWAKE: AtomicBool = AtomicBool::new(false);
static JOB: Slot = Slot(UnsafeCell::new(None));
static HELPER: OnceLock<Option<Thread>> = OnceLock::new();

/// Whether splits are on: the caller is a thread of a rayon pool of two threads or more (a
/// program asks for them by running its work in such a pool; threads outside any pool, such as
/// a test harness's, run every op whole).
pub fn enabled() -> bool {
    rayon::current_thread_index().is_some() && rayon::current_num_threads() >= 2
}

/// Runs `work(0)` and `work(1)`, the second on the helper thread when it is free and awake.
pub fn split(work: &Job<'_>) {
    if !enabled() || BUSY.swap(true, Ordering::Acquire) {
        work(0);
        work(1);
        return;
    }
    let helper = HELPER.get_or_init(spawn);
    if !AWAKE.load(Ordering::SeqCst) {
        if let Some(t) = helper {
            t.unpark();
        }
        BUSY.store(false, Ordering::Release);
        work(0);
        work(1);
        return;
    }
    // SAFETY: the pointer's lifetime is erased; `work` outlives the job because this function
    // does not return (or unwind) until the helper has left RUNNING.
    unsafe {
        *JOB.0.get() =
            Some(core::mem::transmute::<&Job<'_>, &'static Job<'static>>(work) as *const _);
    }
    STATE.store(POSTED, Ordering::SeqCst);
    let mine = catch_unwind(AssertUnwindSafe(|| work(0)));
    let theirs = match STATE.compare_exchange(POSTED, IDLE, Ordering::AcqRel, Ordering::Acquire) {
        // Not picked up: run it here.
        Ok(_) => catch_unwind(AssertUnwindSafe(|| work(1))),
        Err(_) => {
            while STATE.load(Ordering::Acquire) == RUNNING {
                core::hint::spin_loop();
            }
            match STATE.swap(IDLE, Ordering::AcqRel) {
                PANICKED => Err(
                    Box::new("burn-flex: a split op panicked on the helper thread")
                        as Box<dyn core::any::Any + Send>,
                ),
                _ => Ok(()),
            }
        }
    };
    BUSY.store(false, Ordering::Release);
    if let Err(p) = mine.and(theirs) {
        resume_unwind(p);
    }
}

fn spawn() -> Option<Thread> {
    AWAKE.store(true, Ordering::SeqCst);
    let spawned = thread::Builder::new()
        .name("burn-flex-duo".into())
        .spawn(helper_loop);
    match spawned {
        Ok(h) => Some(h.thread().clone()),
        Err(_) => {
            AWAKE.store(false, Ordering::SeqCst);
            None
        }
    }
}

fn helper_loop() {
    loop {
        let mut idle_since = Instant::now();
        let mut spins = 0u32;
        loop {
            if STATE
                .compare_exchange(POSTED, RUNNING, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
            {
                // SAFETY: set before POSTED was stored; the caller keeps it alive until we leave RUNNING.
                let job = unsafe { (*JOB.0.get()).expect("job posted") };
                let ran = catch_unwind(AssertUnwindSafe(|| unsafe { (*job)(1) }));
                STATE.store(if ran.is_ok() { DONE } else { PANICKED }, Ordering::Release);
                idle_since = Instant::now();
                continue;
            }
            spins = spins.wrapping_add(1);
            if spins % 256 == 0 && idle_since.elapsed() > SPIN {
                break;
            }
            core::hint::spin_loop();
        }
        AWAKE.store(false, Ordering::SeqCst);
        // A caller that saw AWAKE before it fell may have posted: take it rather than park on it.
        if STATE.load(Ordering::SeqCst) == POSTED {
            AWAKE.store(true, Ordering::SeqCst);
            continue;
        }
        thread::park();
        AWAKE.store(true, Ordering::SeqCst);
    }
}

/// Element-wise ops split from this many elements (a 256 × 128 activation has 32 Ki).
pub const MIN_ELEMS: usize = 16 * 1024;

/// Calls `f(chunk, offset)` on the two halves of `data` through `split`, or once on all of it
/// when it is short or splits are off. Halves start on a 64-element boundary.
pub fn halves<E: Send + Sync>(data: &mut [E], f: impl Fn(&mut [E], usize) + Sync) {
    let n = data.len();
    if n < MIN_ELEMS || !enabled() {
        crate::wide::run(|| f(data, 0));
        return;
    }
    let mid = (n / 2).next_multiple_of(64);
    let ptr = data.as_mut_ptr() as usize;
    split(&|i| {
        let (start, len) = if i == 0 { (0, mid) } else { (mid, n - mid) };
        // SAFETY: the two halves are disjoint parts of `data`, borrowed mutably for this call.
        let chunk = unsafe { core::slice::from_raw_parts_mut((ptr as *mut E).add(start), len) };
        crate::wide::run(|| f(chunk, start))
    });
}

/// A vector of `n` elements, filled in two halves by `halves`: `f(chunk, offset)` gets the
/// uninitialised slots `offset..offset + chunk.len()`.
///
/// # Safety
/// `f` must write every slot of every chunk it is given.
pub unsafe fn fill<E: Send + Sync>(
    n: usize,
    f: impl Fn(&mut [core::mem::MaybeUninit<E>], usize) + Sync,
) -> alloc::vec::Vec<E> {
    let mut out = alloc::vec::Vec::with_capacity(n);
    halves(&mut out.spare_capacity_mut()[..n], f);
    // SAFETY: the caller's `f` wrote all n slots.
    unsafe { out.set_len(n) };
    out
}
