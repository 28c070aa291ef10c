//! What a board does: every class, `per_class` samples, each framed onto the stream. The board
//! crates only supply the writer (a UART), the delay and the arena.

use crate::infer::Arena;
use crate::kernels::Kernel;
use crate::kq8::Model;
use crate::{stream, Error};
use embedded_hal::delay::DelayNs;
use embedded_io::Write;

/// What to generate.
#[derive(Debug, Clone, Copy)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Plan {
    pub seed: u64,
    pub per_class: u32,
    /// Pause between samples (0: as fast as the writer takes them).
    pub interval_us: u32,
}

/// What was sent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Summary {
    pub samples: u32,
    pub bytes: u32,
}

/// Generates and streams the plan's samples, class by class in index order.
pub fn run<W: Write, D: DelayNs>(
    model: &Model,
    plan: &Plan,
    arena: &mut Arena<'_>,
    kernel: Kernel,
    out: &mut W,
    delay: &mut D,
) -> Result<Summary, Error> {
    let mut summary = Summary::default();
    for class in 0..model.header.classes.max(1) {
        for index in 0..plan.per_class {
            let values = model.generate(class, plan.seed, index, arena, kernel)?;
            stream::write_frame(out, class, index, values)?;
            summary.samples = summary.samples.saturating_add(1);
            let frame = (values.len() + stream::OVERHEAD) as u32;
            summary.bytes = summary.bytes.saturating_add(frame);
            if plan.interval_us > 0 {
                delay.delay_us(plan.interval_us);
            }
        }
    }
    out.flush().map_err(|_| Error::Write)?;
    Ok(summary)
}
