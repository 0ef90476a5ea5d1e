//! The registry's log, rate-limited per uid: a storm of one user's refused connections or
//! registrations must neither flood the log nor hide another user's events in it.

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Lines a second, per uid.
const PER_SECOND: u32 = 10;
const SECOND: Duration = Duration::from_secs(1);

/// One uid's current second: when it began, lines said, lines left out.
struct Window {
    since: Instant,
    said: u32,
    left_out: u64,
}

/// The windows, by uid (`None`: events of no client, such as an `accept` error).
#[derive(Default)]
pub(super) struct Notes {
    windows: HashMap<Option<u32>, Window>,
}

impl Notes {
    /// Logs `line` about `uid`, unless that uid had its lines for this second.
    pub(super) fn note(&mut self, uid: Option<u32>, log: &mut dyn FnMut(&str), line: &str) {
        let now = Instant::now();
        let w = self.windows.entry(uid).or_insert(Window {
            since: now,
            said: 0,
            left_out: 0,
        });
        if now.duration_since(w.since) >= SECOND {
            if w.left_out > 0 {
                log(&left_out(uid, w.left_out));
            }
            *w = Window {
                since: now,
                said: 0,
                left_out: 0,
            };
        }
        if w.said < PER_SECOND {
            w.said += 1;
            log(line);
        } else {
            w.left_out += 1;
        }
    }

    /// Says how many lines were left out in the seconds that are over, and forgets those
    /// windows.
    pub(super) fn flush(&mut self, log: &mut dyn FnMut(&str)) {
        let now = Instant::now();
        self.windows.retain(|uid, w| {
            if now.duration_since(w.since) < SECOND {
                return true;
            }
            if w.left_out > 0 {
                log(&left_out(*uid, w.left_out));
            }
            false
        });
    }

    /// When the next count of left-out lines is due, if one is.
    pub(super) fn due(&self) -> Option<Instant> {
        self.windows
            .values()
            .filter(|w| w.left_out > 0)
            .map(|w| w.since + SECOND)
            .min()
    }
}

fn left_out(uid: Option<u32>, n: u64) -> String {
    match uid {
        Some(uid) => format!("({n} more such lines for uid {uid} left out)"),
        None => format!("({n} more such lines left out)"),
    }
}
