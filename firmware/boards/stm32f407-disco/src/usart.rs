//! USART2 transmit on PA2 (alternate function 7), registers as RM0090 gives them; an
//! `embedded_io::Write` for the sample stream.

use core::convert::Infallible;
use core::ptr::{read_volatile, write_volatile};

const RCC: usize = 0x4002_3800;
const RCC_AHB1ENR: usize = RCC + 0x30;
const RCC_APB1ENR: usize = RCC + 0x40;
const GPIOA: usize = 0x4002_0000;
const GPIOA_MODER: usize = GPIOA;
const GPIOA_AFRL: usize = GPIOA + 0x20;
const USART2: usize = 0x4000_4400;
const SR: usize = USART2;
const DR: usize = USART2 + 0x04;
const BRR: usize = USART2 + 0x08;
const CR1: usize = USART2 + 0x0C;
const SR_TXE: u32 = 1 << 7;
const SR_TC: u32 = 1 << 6;

pub struct Usart2;

unsafe fn modify(addr: usize, f: impl FnOnce(u32) -> u32) {
    write_volatile(addr as *mut u32, f(read_volatile(addr as *const u32)));
}

impl Usart2 {
    /// # Safety
    /// Takes over USART2 and PA2; nothing else may use them.
    pub unsafe fn new(clock_hz: u32, baud: u32) -> Self {
        modify(RCC_AHB1ENR, |v| v | 1); // GPIOA clock
        modify(RCC_APB1ENR, |v| v | 1 << 17); // USART2 clock
        modify(GPIOA_MODER, |v| (v & !(0b11 << 4)) | 0b10 << 4); // PA2: alternate function
        modify(GPIOA_AFRL, |v| (v & !(0xF << 8)) | 7 << 8); // AF7 = USART2
        write_volatile(BRR as *mut u32, (clock_hz + baud / 2) / baud); // oversampling by 16
        write_volatile(CR1 as *mut u32, 1 << 13 | 1 << 3); // UE | TE
        Usart2
    }
}

impl embedded_io::ErrorType for Usart2 {
    type Error = Infallible;
}

impl embedded_io::Write for Usart2 {
    fn write(&mut self, buf: &[u8]) -> Result<usize, Infallible> {
        for &b in buf {
            // SAFETY: the USART this value owns.
            unsafe {
                while read_volatile(SR as *const u32) & SR_TXE == 0 {}
                write_volatile(DR as *mut u32, b as u32);
            }
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> Result<(), Infallible> {
        // SAFETY: as above.
        unsafe { while read_volatile(SR as *const u32) & SR_TC == 0 {} }
        Ok(())
    }
}
