//! What Keel's tools promise each other about the files that cross from one to the next, defined
//! once: the exported generator's ONNX contract (`onnx`: input and output names, the `keel.*`
//! metadata with its writer and its checking reader), and how every output reaches the disk
//! (`atomic`: complete or absent, never half written; `pipe`: a reader that goes away ends the
//! tool quietly). The `.kq8` format lives in the firmware
//! library for the same reason: the reader and the writer cannot drift apart.

pub mod atomic;
pub mod onnx;
pub mod pipe;

pub use atomic::{write_atomic, AtomicFile};
pub use onnx::{Denorm, Metadata, Modes};
