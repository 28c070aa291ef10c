//! Stack high-water by painting: fill the free stack with a pattern at start, later find the
//! lowest word that changed.

const PAINT: u32 = 0x5A5A_A5A5;

extern "C" {
    /// End of .bss/.uninit: the lowest address the stack may grow down to (cortex-m-rt).
    static mut __sheap: u32;
    /// Top of the stack (cortex-m-rt).
    static _stack_start: u32;
}

/// Paints from the bottom of the free stack up to just below the current stack pointer.
/// Call first thing in `main`.
#[inline(never)]
pub fn paint() {
    let sp = cortex_m::register::msp::read() as usize;
    let mut p = core::ptr::addr_of_mut!(__sheap);
    // SAFETY: the words between the end of the statics and 64 bytes below the live stack
    // pointer belong to no one yet.
    unsafe {
        while (p as usize) < sp - 64 {
            p.write_volatile(PAINT);
            p = p.add(1);
        }
    }
}

/// Bytes of stack ever used since [`paint`].
pub fn high_water() -> u32 {
    let top = core::ptr::addr_of!(_stack_start) as usize;
    let mut p = core::ptr::addr_of!(__sheap);
    // SAFETY: reads words of the stack region below the stack pointer.
    unsafe {
        while (p as usize) < top && p.read_volatile() == PAINT {
            p = p.add(1);
        }
    }
    (top - p as usize) as u32
}
