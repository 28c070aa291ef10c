//! A busy-wait `DelayNs` from the core clock (the stream's pacing needs nothing better).

pub struct CycleDelay {
    hz: u32,
}

impl CycleDelay {
    pub fn new(hz: u32) -> Self {
        CycleDelay { hz }
    }
}

impl embedded_hal::delay::DelayNs for CycleDelay {
    fn delay_ns(&mut self, ns: u32) {
        let cycles = (ns as u64 * self.hz as u64).div_ceil(1_000_000_000);
        cortex_m::asm::delay(cycles.min(u32::MAX as u64) as u32);
    }
}
