//! STM32F4DISCOVERY (STM32F407VG, Cortex-M4F) on its 16 MHz internal oscillator: the sample stream
//! leaves on USART2 (PA2), defmt logs go over RTT, the exit code over semihosting.
#![no_std]
#![no_main]

mod usart;

use cortex_m_rt::entry;
use defmt_rtt as _;

/// HSI, the clock out of reset (no PLL set up: the figures are instruction counts anyway).
const CPU_HZ: u32 = 16_000_000;

#[entry]
fn main() -> ! {
    // SAFETY: USART2 and PA2 are used by nothing else in this program.
    let uart = unsafe { usart::Usart2::new(CPU_HZ, 115_200) };
    keel_board::main(CPU_HZ, uart)
}
