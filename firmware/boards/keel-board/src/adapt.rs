//! On-device adaptation, when the build embeds an adaptation set (`KEEL_ADAPT`): the head is
//! trained twice with the library's own `learn::adapt` — on the set's real windows only, then with
//! generated ones — and both test accuracies and the instructions of each phase are logged.

use crate::{exit, Counter};
use core::ptr::addr_of_mut;
use core::sync::atomic::{AtomicBool, Ordering};
use keel_firmware::learn::{adapt, AdaptSet, Learner, Phase};
use keel_firmware::{Arena, Augmenter, Kernel, Model};

/// The most classes the board's learner holds (its statistics are a static of
/// `(2 × CLASSES + 2) × 672` f32: 6 classes keep the board under 64 KB of RAM).
const CLASSES: usize = 6;
/// The longest window (a scratch buffer in RAM).
const WINDOW: usize = 1024;

static TAKEN: AtomicBool = AtomicBool::new(false);
// Initialised at compile time (in .bss): `cortex_m::singleton!` would build them on the stack first.
static mut LEARNER: Learner<CLASSES> = Learner::empty();
static mut SCRATCH: [i8; WINDOW] = [0; WINDOW];

/// The learner and the window scratch, handed out once.
fn take_statics() -> Option<(&'static mut Learner<CLASSES>, &'static mut [i8; WINDOW])> {
    if TAKEN.swap(true, Ordering::AcqRel) {
        return None;
    }
    // SAFETY: the flag above hands these out once, so no other reference to them exists.
    unsafe { Some((&mut *addr_of_mut!(LEARNER), &mut *addr_of_mut!(SCRATCH))) }
}

/// Instructions spent per phase: the tick count since the last mark goes to the phase it ended.
struct Phases {
    ticks: [u64; 5],
    phase: Option<Phase>,
    last: u32,
}

impl Phases {
    fn mark(&mut self, counter: &Counter, next: Phase) {
        let now = counter.now();
        if let Some(p) = self.phase {
            self.ticks[p as usize] += Counter::diff(self.last, now) as u64;
        }
        self.phase = Some(next);
        self.last = now;
    }
}

pub fn run(model: &Model, arena: &mut Arena, counter: &Counter, bytes: &[u8]) -> Result<(), i32> {
    let fail = |what: &str, e: keel_firmware::Error| {
        defmt::error!("adapt: {=str}: {}", what, e);
        exit::ADAPT_FAILED
    };
    let set = AdaptSet::parse(bytes).map_err(|e| fail("set refused", e))?;
    let len = model.header.outputs();
    if set.length != len || set.classes != model.header.classes || len > WINDOW {
        defmt::error!(
            "adapt: the set's windows ({} classes x {} values) are not this model's ({} x {})",
            set.classes,
            set.length,
            model.header.classes,
            len
        );
        return Err(exit::ADAPT_FAILED);
    }
    let per_tick = counter.calibrate() as u64;
    let Some((learner, scratch)) = take_statics() else {
        return Err(exit::PANIC);
    };
    let scratch = &mut scratch[..len];
    let mut aug =
        Augmenter::new(model, arena, Kernel::best(), set.seed).map_err(|e| fail("augmenter", e))?;
    // The extractor's biases come from generated windows: timed one window at a time.
    let mut fit_ticks = 0u64;
    let mut last = counter.now();
    let features = aug
        .features_observed(set.seed, scratch, &mut |_| {
            let now = counter.now();
            fit_ticks += Counter::diff(last, now) as u64;
            last = now;
        })
        .map_err(|e| fail("features", e))?;
    learner
        .init(features, set.classes as usize)
        .map_err(|e| fail("learner", e))?;
    for (arm, generated) in [0, set.generated].into_iter().enumerate() {
        let mut phases = Phases {
            ticks: [0; 5],
            phase: None,
            last: 0,
        };
        let right = adapt(learner, &mut aug, &set, generated, 0, scratch, &mut |p| {
            phases.mark(counter, p)
        })
        .map_err(|e| fail("adaptation", e))?;
        if arm == 0 {
            defmt::info!(
                "adapt: real only {} of {} right ({} real windows)",
                right,
                set.tests,
                set.labelled
            );
        } else {
            defmt::info!(
                "adapt: with {} generated per class {} of {} right",
                generated,
                right,
                set.tests
            );
        }
        let i = |p: Phase| phases.ticks[p as usize] * per_tick;
        let adaptation =
            fit_ticks * per_tick + i(Phase::Generate) + i(Phase::Extract) + i(Phase::Train);
        defmt::info!(
            "adapt instructions: fit {} generate {} extract {} train {} (adaptation {}), predict {} for {} windows",
            fit_ticks * per_tick,
            i(Phase::Generate),
            i(Phase::Extract),
            i(Phase::Train),
            adaptation,
            i(Phase::Predict),
            set.tests
        );
    }
    defmt::info!(
        "adapt RAM: learner {} bytes, window scratch {} bytes",
        core::mem::size_of::<Learner<CLASSES>>(),
        WINDOW
    );
    Ok(())
}
