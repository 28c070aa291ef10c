//! The CMSDK APB UART of the MPS2 boards, transmit only, as an `embedded_io::Write`.

use core::convert::Infallible;
use core::ptr::{read_volatile, write_volatile};

pub const UART0: usize = 0x4000_4000;
const DATA: usize = 0x00;
const STATE: usize = 0x04;
const CTRL: usize = 0x08;
const BAUDDIV: usize = 0x10;
const STATE_TX_FULL: u32 = 1;
const CTRL_TX_EN: u32 = 1;

pub struct CmsdkUart {
    base: usize,
}

impl CmsdkUart {
    /// # Safety
    /// `base` must be a CMSDK UART that nothing else uses.
    pub unsafe fn new(base: usize, clock_hz: u32, baud: u32) -> Self {
        write_volatile((base + BAUDDIV) as *mut u32, (clock_hz / baud).max(16));
        write_volatile((base + CTRL) as *mut u32, CTRL_TX_EN);
        CmsdkUart { base }
    }

    fn put(&mut self, b: u8) {
        // SAFETY: the registers of the UART this value owns.
        unsafe {
            while read_volatile((self.base + STATE) as *const u32) & STATE_TX_FULL != 0 {}
            write_volatile((self.base + DATA) as *mut u32, b as u32);
        }
    }
}

impl embedded_io::ErrorType for CmsdkUart {
    type Error = Infallible;
}

impl embedded_io::Write for CmsdkUart {
    fn write(&mut self, buf: &[u8]) -> Result<usize, Infallible> {
        buf.iter().for_each(|&b| self.put(b));
        Ok(buf.len())
    }

    fn flush(&mut self) -> Result<(), Infallible> {
        Ok(())
    }
}
