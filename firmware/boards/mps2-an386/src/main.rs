//! MPS2 AN386 (Cortex-M4F, 25 MHz in QEMU): the sample stream leaves on UART0, defmt logs on
//! semihosting, and the exit code goes back to QEMU.
#![no_std]
#![no_main]

mod uart;

use cortex_m_rt::entry;
use defmt_semihosting as _;
use keel_board::{exit, Counter, CycleDelay, Statics};

/// The an386's system clock (QEMU's model of it).
const CPU_HZ: u32 = 25_000_000;

#[entry]
fn main() -> ! {
    keel_board::paint_stack();
    let code = match (
        cortex_m::Peripherals::take(),
        cortex_m::singleton!(: Statics = Statics::new()),
    ) {
        (Some(p), Some(statics)) => {
            let counter = Counter::start(p.SYST);
            // SAFETY: UART0 of the an386 at its documented address; nothing else drives it.
            let mut uart = unsafe { uart::CmsdkUart::new(uart::UART0, CPU_HZ, 115_200) };
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
