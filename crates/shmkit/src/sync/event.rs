//! A manual-reset event in shared memory.

use super::block::{magic, Block};
use crate::error::Result;
use crate::platform::futex::{self, Woken};
use crate::Mapping;
use std::sync::atomic::{AtomicU32, Ordering::SeqCst};
use std::time::{Duration, Instant};

const MAGIC: u32 = magic(b"shkE");

/// A flag that processes wait for: `set` wakes every waiter and stays set until `reset`.
///
/// Every operation checks the mapping before and after it touches the block (see
/// [`Mapping::check`](crate::Mapping::check)); a sleeping `wait` looks every half second.
///
/// Layout (16 bytes, `#[repr(C)]`, little-endian `u32`s): magic `"shkE"`, version, `state`
/// (0 clear, 1 set), `waiters`.
///
/// ```
/// use shmkit::{AnonShared, sync::Event};
/// use std::time::Duration;
/// let seg = AnonShared::new(4096)?;
/// let ready = Event::init(&seg, 0)?;
/// assert!(!ready.wait_timeout(Duration::from_millis(1))?);
/// ready.set()?;
/// assert!(ready.wait_timeout(Duration::from_millis(1))?);
/// # Ok::<(), shmkit::Error>(())
/// ```
pub struct Event<'a> {
    state: &'a AtomicU32,
    waiters: &'a AtomicU32,
    map: &'a Mapping,
}

impl<'a> Event<'a> {
    /// Bytes an event occupies.
    pub const SIZE: usize = 16;

    /// Builds a clear event at `offset` (a multiple of 8) of `map`, overwriting what was there.
    ///
    /// # Errors
    /// As [`Semaphore::init`](super::Semaphore::init), `value` aside.
    pub fn init(map: &'a Mapping, offset: usize) -> Result<Self> {
        let b = Block::<4>::build(map, offset, "event", MAGIC, 0, &[])?;
        Ok(Event {
            state: b.words[2],
            waiters: b.words[3],
            map,
        })
    }

    /// The one another process built at `offset`.
    ///
    /// # Errors
    /// As [`Semaphore::open`](super::Semaphore::open), for an event block.
    pub fn open(map: &'a Mapping, offset: usize) -> Result<Self> {
        let (b, _) = Block::<4>::open(map, offset, "event", MAGIC)?;
        Ok(Event {
            state: b.words[2],
            waiters: b.words[3],
            map,
        })
    }

    /// Sets the event and wakes every waiter.
    ///
    /// # Errors
    /// The errors of [`Mapping::check`].
    pub fn set(&self) -> Result<()> {
        self.map.touch("event set", || {
            // Dekker pair with `wait_until` (store state, load waiters / store waiters, load
            // state): SeqCst makes at least one side see the other.
            self.state.store(1, SeqCst);
            if self.waiters.load(SeqCst) > 0 {
                futex::wake(self.state, i32::MAX as u32);
            }
        })
    }

    /// Clears the event; later waits sleep until the next `set`.
    ///
    /// # Errors
    /// The errors of [`Mapping::check`].
    pub fn reset(&self) -> Result<()> {
        self.map
            .touch("event reset", || self.state.store(0, SeqCst))
    }

    /// Whether it is set now.
    ///
    /// # Errors
    /// The errors of [`Mapping::check`].
    pub fn is_set(&self) -> Result<bool> {
        self.map
            .touch("event is_set", || self.state.load(SeqCst) != 0)
    }

    /// Sleeps until the event is set.
    ///
    /// # Errors
    /// The errors of [`Mapping::check`], also noticed while asleep (within half a second).
    pub fn wait(&self) -> Result<()> {
        self.wait_until(None).map(|_| ())
    }

    /// Sleeps until the event is set, at most `timeout`; whether it was set.
    ///
    /// # Errors
    /// The errors of [`Mapping::check`], also noticed while asleep (within half a second).
    pub fn wait_timeout(&self, timeout: Duration) -> Result<bool> {
        self.wait_until(super::deadline(timeout))
    }

    /// Sleeps until the event is set, until `deadline` at the latest; whether it was set.
    ///
    /// # Errors
    /// The errors of [`Mapping::check`], also noticed while asleep (within half a second).
    pub fn wait_until(&self, deadline: Option<Instant>) -> Result<bool> {
        if self.is_set()? {
            return Ok(true);
        }
        self.waiters.fetch_add(1, SeqCst);
        let set = loop {
            if self.state.load(SeqCst) != 0 {
                break true;
            }
            if futex::wait(self.state, 0, deadline) == Woken::TimedOut {
                break self.state.load(SeqCst) != 0;
            }
            if self.map.check_state_for("event wait").is_err() {
                break false;
            }
        };
        self.waiters.fetch_sub(1, SeqCst);
        self.map.check_state_for("event wait")?;
        Ok(set)
    }
}
