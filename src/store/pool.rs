//! A small pool of database connections, so that the threads of a parallel
//! billing run each query on their own instead of queuing for one.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, TryLockError};

use crate::error::Result;

/// Up to `size` connections, each opened the first time it is needed.
pub(crate) struct Pool<T> {
    slots: Vec<Mutex<Option<T>>>,
    next: AtomicUsize,
}

impl<T> Pool<T> {
    /// A pool of `size` slots (at least one), the first holding `first`.
    pub(crate) fn new(size: usize, first: T) -> Pool<T> {
        let mut slots: Vec<Mutex<Option<T>>> = (0..size.max(1)).map(|_| Mutex::new(None)).collect();
        slots[0] = Mutex::new(Some(first));
        Pool {
            slots,
            next: AtomicUsize::new(0),
        }
    }

    /// How many connections it may hold.
    pub(crate) fn capacity(&self) -> usize {
        self.slots.len()
    }

    /// As many slots as the machine has threads, from 2 to `max`.
    pub(crate) fn size_for_threads(max: usize) -> usize {
        std::thread::available_parallelism()
            .map_or(4, |n| n.get())
            .clamp(2, max.max(2))
    }

    /// A free connection, or the first to be freed: a slot that is empty,
    /// or whose connection `usable` rejects, is filled by `open`.
    pub(crate) fn get(
        &self,
        open: impl FnOnce() -> Result<T>,
        usable: impl Fn(&T) -> bool,
    ) -> Result<Pooled<'_, T>> {
        let n = self.slots.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed) % n;
        let mut found: Option<MutexGuard<'_, Option<T>>> = None;
        for k in 0..n {
            match self.slots[(start + k) % n].try_lock() {
                Ok(guard) => {
                    found = Some(guard);
                    break;
                }
                Err(TryLockError::Poisoned(p)) => {
                    found = Some(forget(p.into_inner()));
                    break;
                }
                Err(TryLockError::WouldBlock) => {}
            }
        }
        let mut guard = match found {
            Some(g) => g,
            None => self.slots[start]
                .lock()
                .unwrap_or_else(|p| forget(p.into_inner())),
        };
        if !guard.as_ref().is_some_and(usable) {
            *guard = Some(open()?);
        }
        Ok(Pooled(guard))
    }

    /// Runs `f` on a connection from [`Pool::get`].
    pub(crate) fn with<R>(
        &self,
        open: impl FnOnce() -> Result<T>,
        usable: impl Fn(&T) -> bool,
        f: impl FnOnce(&mut T) -> Result<R>,
    ) -> Result<R> {
        let mut connection = self.get(open, usable)?;
        f(&mut connection)
    }
}

/// A connection taken from a [`Pool`], back in it when dropped.
pub(crate) struct Pooled<'a, T>(MutexGuard<'a, Option<T>>);

impl<T> std::ops::Deref for Pooled<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // `Pool::get` fills the slot before it hands the guard out.
        self.0.as_ref().expect("a pooled slot holds a connection")
    }
}

impl<T> std::ops::DerefMut for Pooled<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // As in `deref`.
        self.0.as_mut().expect("a pooled slot holds a connection")
    }
}

/// A slot whose holder panicked mid-query: its connection may be in any
/// state, so it is dropped and a new one opened.
fn forget<T>(mut guard: MutexGuard<'_, Option<T>>) -> MutexGuard<'_, Option<T>> {
    *guard = None;
    guard
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threads_get_connections_of_their_own() {
        let opened = AtomicUsize::new(0);
        let pool = Pool::new(3, 0usize);
        std::thread::scope(|s| {
            for _ in 0..3 {
                s.spawn(|| {
                    for _ in 0..100 {
                        pool.with(
                            || Ok(opened.fetch_add(1, Ordering::Relaxed) + 1),
                            |_| true,
                            |c| {
                                *c += 0;
                                Ok(())
                            },
                        )
                        .unwrap();
                    }
                });
            }
        });
        assert!(
            opened.load(Ordering::Relaxed) <= 2,
            "at most the two empty slots are opened"
        );
    }

    #[test]
    fn an_unusable_connection_is_replaced() {
        let pool = Pool::new(1, 7u32);
        let got = pool.with(|| Ok(8), |c| *c != 7, |c| Ok(*c)).unwrap();
        assert_eq!(got, 8);
    }
}
