//! MPS2 AN386 (Cortex-M4F, 25 MHz in QEMU): the sample stream leaves on UART0, defmt logs on
//! semihosting, and the exit code goes back to QEMU.
#![no_std]
#![no_main]

mod uart;

use cortex_m_rt::entry;
use defmt_semihosting as _;

/// The an386's system clock (QEMU's model of it).
const CPU_HZ: u32 = 25_000_000;

#[entry]
fn main() -> ! {
    // SAFETY: UART0 of the an386 at its documented address; nothing else drives it.
    let uart = unsafe { uart::CmsdkUart::new(uart::UART0, CPU_HZ, 115_200) };
    keel_board::main(CPU_HZ, uart)
}
