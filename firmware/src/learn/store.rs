//! The user's labelled windows, in a fixed-capacity store.

use crate::Error;

/// Up to `CAP` labelled int8 windows of up to `N` values each. When it is full, [`Store::push`]
/// refuses the window with [`Error::StoreFull`] and keeps what it holds: nothing is evicted
/// behind the application's back; it decides what to drop ([`Store::remove`], [`Store::clear`]).
pub struct Store<const N: usize, const CAP: usize> {
    windows: heapless::Vec<(u16, heapless::Vec<i8, N>), CAP>,
    len: usize,
}

impl<const N: usize, const CAP: usize> Store<N, CAP> {
    /// A store for windows of exactly `len` values (`≤ N`).
    pub fn new(len: usize) -> Result<Self, Error> {
        if len > N || len == 0 {
            return Err(Error::BadShape {
                need: len as u32,
                have: N as u32,
            });
        }
        Ok(Self {
            windows: heapless::Vec::new(),
            len,
        })
    }

    /// Keeps a copy of `window` labelled `class`.
    pub fn push(&mut self, class: u16, window: &[i8]) -> Result<(), Error> {
        if window.len() != self.len {
            return Err(Error::BadShape {
                need: self.len as u32,
                have: window.len() as u32,
            });
        }
        if self.windows.is_full() {
            return Err(Error::StoreFull {
                capacity: CAP as u32,
            });
        }
        let values = heapless::Vec::from_slice(window).map_err(|_| Error::BadShape {
            need: self.len as u32,
            have: N as u32,
        })?;
        self.windows
            .push((class, values))
            .map_err(|_| Error::StoreFull {
                capacity: CAP as u32,
            })
    }

    /// Drops window `i` (later ones move down one place).
    pub fn remove(&mut self, i: usize) -> Option<(u16, heapless::Vec<i8, N>)> {
        (i < self.windows.len()).then(|| self.windows.remove(i))
    }

    pub fn clear(&mut self) {
        self.windows.clear();
    }

    pub fn len(&self) -> usize {
        self.windows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.windows.is_empty()
    }

    /// The windows in the order they were pushed: (class, values).
    pub fn iter(&self) -> impl Iterator<Item = (u16, &[i8])> {
        self.windows.iter().map(|(c, v)| (*c, &v[..]))
    }
}
