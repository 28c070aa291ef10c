//! Keel patch: `duo` without rayon (or std): the same calls, run on the calling thread.

/// Calls `f(data, 0)`.
pub fn halves<E: Send + Sync>(data: &mut [E], f: impl Fn(&mut [E], usize) + Sync) {
    crate::wide::run(|| f(data, 0))
}

/// A vector of `n` elements written by `f(slots, 0)`.
///
/// # Safety
/// `f` must write every slot it is given.
pub unsafe fn fill<E: Send + Sync>(
    n: usize,
    f: impl Fn(&mut [core::mem::MaybeUninit<E>], usize) + Sync,
) -> alloc::vec::Vec<E> {
    let mut out = alloc::vec::Vec::with_capacity(n);
    crate::wide::run(|| f(&mut out.spare_capacity_mut()[..n], 0));
    // SAFETY: the caller's `f` wrote all n slots.
    unsafe { out.set_len(n) };
    out
}

/// Calls `work(0)`, then `work(1)`.
pub fn split(work: &(dyn Fn(usize) + Sync + '_)) {
    work(0);
    work(1);
}
