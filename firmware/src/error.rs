//! Why a `.kq8` blob or a stream frame was refused. Every reader returns one of these; none panics.

use core::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Error {
    /// Fewer bytes than the fixed header, or than the header says the file holds.
    Truncated { need: u32, have: u32 },
    /// The first four bytes are not `KQ8\0`: not a .kq8 file.
    BadMagic,
    /// A format version this reader does not know.
    UnsupportedVersion(u16),
    /// The CRC-32 stored at the end does not match the bytes before it.
    BadChecksum { stored: u32, computed: u32 },
    /// A header field is out of range; `field` names it.
    BadHeader { field: &'static str },
    /// Layer `layer`'s table entry is out of range or points outside the file; `field` names it.
    BadLayer { layer: u16, field: &'static str },
    /// The activation arena given to the generator is smaller than the model needs.
    ArenaTooSmall { need: u32, have: u32 },
    /// A window buffer whose length is not the model's `channels × length`.
    BadShape { need: u32, have: u32 },
    /// The labelled-window store is full (it holds `capacity`); nothing was evicted.
    StoreFull { capacity: u32 },
    /// The learner has no window of `class` to train on.
    NoWindows { class: u16 },
    /// A prediction asked of a learner that was not trained.
    NotTrained,
    /// A window added to a trained learner (reset it first).
    Trained,
    /// A class index at or beyond the model's class count.
    BadClass { class: u16, classes: u16 },
    /// A stream frame that is cut short, has the wrong sync bytes or a wrong CRC.
    BadFrame { offset: u32 },
    /// The writer under the sample stream failed.
    Write,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Error::Truncated { need, have } => {
                write!(f, "truncated: needs {need} bytes, has {have}")
            }
            Error::BadMagic => write!(f, "not a .kq8 file (bad magic)"),
            Error::UnsupportedVersion(v) => write!(
                f,
                ".kq8 format version {v} is not supported (this reader knows version {})",
                crate::kq8::VERSION
            ),
            Error::BadChecksum { stored, computed } => write!(
                f,
                "checksum mismatch: stored CRC-32 {stored:#010x}, computed {computed:#010x} (corrupted file)"
            ),
            Error::BadHeader { field } => write!(f, "header field `{field}` is out of range"),
            Error::BadLayer { layer, field } => {
                write!(f, "layer {layer}: field `{field}` is out of range")
            }
            Error::ArenaTooSmall { need, have } => {
                write!(f, "activation arena too small: needs {need} bytes, has {have}")
            }
            Error::BadShape { need, have } => {
                write!(f, "a window holds {need} values (channels × length), the buffer {have}")
            }
            Error::StoreFull { capacity } => write!(
                f,
                "the window store is full ({capacity} windows): remove or clear some first"
            ),
            Error::NoWindows { class } => write!(f, "no window of class {class} to learn from"),
            Error::NotTrained => write!(f, "the learner is not trained yet"),
            Error::Trained => write!(f, "the learner is trained: reset it before adding windows"),
            Error::BadClass { class, classes } => {
                write!(f, "class {class} out of range (the model has {classes})")
            }
            Error::BadFrame { offset } => write!(f, "bad stream frame at byte {offset}"),
            Error::Write => write!(f, "the sample stream's writer failed"),
        }
    }
}
