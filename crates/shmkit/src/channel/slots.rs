//! The shape of a channel of fixed-size slots (broadcast and MPSC): each message takes one
//! slot, whatever its length, so a slot is a header and room for the largest message,
//! rounded up to a power of two, and the data is a power of two of them.

/// The slot size for messages of at most `max_message` bytes after a `header`: a power of
/// two of at least 32.
pub(super) fn slot_size(max_message: usize, header: usize) -> usize {
    header
        .saturating_add(max_message.saturating_add(7) & !7)
        .checked_next_power_of_two()
        .unwrap_or(usize::MAX)
        .max(32)
}

/// The largest message a channel of `capacity` bytes gets unless told: a sixteenth of the
/// capacity per slot, 32 to 1024 bytes, less the header.
pub(super) fn default_max_message(capacity: usize, header: usize) -> usize {
    (capacity / 16).clamp(32, 1024) - header
}

/// Why `capacity` bytes of slots for messages of at most `max_message` bytes cannot work.
pub(super) fn problem(capacity: usize, max_message: usize, header: usize) -> Option<String> {
    if !capacity.is_power_of_two() || capacity < 64 {
        return Some(format!(
            "capacity {capacity} is not a power of two of at least 64"
        ));
    }
    if capacity > 1 << 32 {
        return Some(format!(
            "capacity {capacity} is more than 4 GiB (the largest a channel has)"
        ));
    }
    let slot = slot_size(max_message, header);
    if max_message == 0 || slot > capacity / 2 {
        return Some(format!(
            "the largest message ({max_message} bytes) must be 1 to {} (a slot holds one \
             message and a {header}-byte header, rounded up to a power of two, and the \
             capacity must hold two slots)",
            capacity / 2 - header
        ));
    }
    None
}
