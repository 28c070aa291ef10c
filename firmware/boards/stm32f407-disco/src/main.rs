//! STM32F4DISCOVERY (STM32F407VG, Cortex-M4F) on its 16 MHz internal oscillator: the sample stream
//! leaves on USART2 (PA2), defmt logs go over RTT, the exit code over semihosting.
#![no_std]
#![no_main]

mod usart;

use cortex_m_rt::entry;
use defmt_rtt as _;
use keel_board::{exit, Counter, CycleDelay, Statics};

/// HSI, the clock out of reset (no PLL set up: the figures are instruction counts anyway).
const CPU_HZ: u32 = 16_000_000;

#[entry]
fn main() -> ! {
    keel_board::paint_stack();
    let code = match (
        cortex_m::Peripherals::take(),
        cortex_m::singleton!(: Statics = Statics::new()),
    ) {
        (Some(p), Some(statics)) => {
            let counter = Counter::start(p.SYST);
            // SAFETY: USART2 and PA2 are used by nothing else in this program.
            let mut uart = unsafe { usart::Usart2::new(CPU_HZ, 115_200) };
            keel_board::run(statics, &mut uart, &mut CycleDelay::new(CPU_HZ), &counter)
        }
        _ => exit::PANIC,
    };
    semihosting::process::exit(code)
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    match info.location() {
        Some(l) => defmt::error!("panic at {=str}:{=u32}", l.file(), l.line()),
        None => defmt::error!("panic"),
    }
    semihosting::process::exit(exit::PANIC)
}
