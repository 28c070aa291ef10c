//! Instruction counting with SysTick. DWT's cycle counter is not emulated by QEMU; under
//! `-icount shift=0` every instruction takes 1 ns of virtual time and SysTick, clocked by the core
//! clock, ticks every `1e9 / f_cpu` ns — so ticks convert to instructions, to within one tick.
//! On real silicon the same ticks are core cycles.

use cortex_m::peripheral::syst::SystClkSource;
use cortex_m::peripheral::SYST;

const MASK: u32 = 0x00ff_ffff;

pub struct Counter {
    _syst: SYST,
}

impl Counter {
    /// Starts SysTick free-running from the core clock, without interrupts.
    pub fn start(mut syst: SYST) -> Counter {
        syst.set_clock_source(SystClkSource::Core);
        syst.set_reload(MASK);
        syst.clear_current();
        syst.disable_interrupt();
        syst.enable_counter();
        Counter { _syst: syst }
    }

    /// The current (down-counting, 24-bit) value.
    pub fn now(&self) -> u32 {
        SYST::get_current()
    }

    /// Ticks from `earlier` to `later` (one wrap at most: keep windows under 2^24 ticks).
    pub fn diff(earlier: u32, later: u32) -> u32 {
        earlier.wrapping_sub(later) & MASK
    }

    pub fn since(&self, earlier: u32) -> u32 {
        Self::diff(earlier, self.now())
    }

    /// Instructions per tick, measured on a loop of known length (2 instructions per turn).
    pub fn calibrate(&self) -> u32 {
        const TURNS: u32 = 100_000;
        let t0 = self.now();
        // SAFETY: a register-only countdown loop.
        unsafe {
            core::arch::asm!("2:", "subs {n}, #1", "bne 2b", n = inout(reg) TURNS => _, options(nomem, nostack));
        }
        let ticks = self.since(t0).max(1);
        (2 * TURNS + ticks / 2) / ticks
    }
}
