//! Copies to and from memory that other threads and processes write at the same time.
//!
//! A plain `memcpy` of such memory is a data race, undefined behaviour under Rust's memory
//! model (and ThreadSanitizer says so), whatever the hardware does. These copies are the
//! byte-wise atomic `memcpy` of the C++ proposal P1478 (taiki-e's `atomic-memcpy` crate does
//! the same for typed values): every access to the shared side is a `Relaxed` atomic load or
//! store, a word at a time where the shared side is word-aligned and a byte at a time at the
//! unaligned edges. A racing writer can make a copy see a mix of old and new words (a "torn"
//! copy), never undefined behaviour; on x86-64 and AArch64 a relaxed word access is an ordinary
//! `mov`/`ldr`, so the only cost against `memcpy` is that the compiler does not vectorize.
//!
//! The private side is ordinary memory that only the caller can reach.
//!
//! On x86-64, copies of [`BULK`] bytes or more are one `rep movsb` instead (the "fast string"
//! microcode every x86-64 since Ivy Bridge has: whole cache lines at a time, as fast as the
//! libc `memcpy`). Inline assembly is outside what the compiler reasons about; what it does
//! must be explainable as Rust operations, and it is: `rep movsb` reads and writes each byte
//! once, and every byte access of x86-64 is single-copy atomic, so its effect is that of the
//! byte-wise relaxed copy above, only faster (the word loop reached a fifth of `memcpy`'s
//! bandwidth at 64 KiB).

use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering::Relaxed};

const WORD: usize = std::mem::size_of::<usize>();

/// From this many bytes on, x86-64 copies with `rep movsb` (its start-up costs about as much
/// as the word loop spends on a few hundred bytes).
#[cfg(target_arch = "x86_64")]
pub(crate) const BULK: usize = 512;

/// `rep movsb`: `len` bytes from `src` to `dst`, each byte read and written once.
///
/// # Safety
/// As for [`load`] or [`store`]: both ranges mapped for the whole call, the private one not
/// accessed by anyone else, no overlap.
#[cfg(target_arch = "x86_64")]
#[inline]
unsafe fn movsb(src: *const u8, dst: *mut u8, len: usize) {
    // SAFETY: the caller's ranges are valid; the Rust ABI guarantees the direction flag is
    // clear on entry (so the copy runs forwards); rcx, rsi and rdi are declared clobbered and
    // the flags are untouched by `rep movsb`. Every byte access is single-copy atomic on
    // x86-64, so racing writers on the shared side make the copy torn, never undefined.
    unsafe {
        std::arch::asm!(
            "rep movsb",
            inout("rcx") len => _,
            inout("rsi") src => _,
            inout("rdi") dst => _,
            options(nostack, preserves_flags)
        );
    }
}

/// Copies `len` bytes from shared memory at `src` to private memory at `dst`.
///
/// # Safety
/// `src..src+len` is mapped and readable for the whole call (bytes another party writes
/// meanwhile are fine: they are read atomically); `dst..dst+len` is valid for writes, not
/// accessed concurrently by anyone else, and does not overlap the source.
#[inline]
pub(crate) unsafe fn load(src: *const u8, dst: *mut u8, len: usize) {
    #[cfg(target_arch = "x86_64")]
    if len >= BULK {
        // SAFETY: the caller's contract is `movsb`'s.
        unsafe { movsb(src, dst, len) };
        return;
    }
    let mut i = 0;
    let head = src.align_offset(WORD).min(len);
    while i < head {
        // SAFETY: in bounds (caller); AtomicU8 has the alignment and size of u8.
        unsafe { *dst.add(i) = (*(src.add(i) as *const AtomicU8)).load(Relaxed) };
        i += 1;
    }
    while len - i >= WORD {
        // SAFETY: `src + i` is word-aligned (we skipped the head) and the word is in bounds;
        // the private side takes an unaligned write.
        unsafe {
            let w = (*(src.add(i) as *const AtomicUsize)).load(Relaxed);
            dst.add(i).cast::<usize>().write_unaligned(w);
        }
        i += WORD;
    }
    while i < len {
        // SAFETY: as for the head.
        unsafe { *dst.add(i) = (*(src.add(i) as *const AtomicU8)).load(Relaxed) };
        i += 1;
    }
}

/// Copies `len` bytes from private memory at `src` to shared memory at `dst`.
///
/// # Safety
/// `dst..dst+len` is mapped and writable for the whole call (others may access it meanwhile:
/// it is written atomically); `src..src+len` is valid for reads, not written concurrently by
/// anyone else, and does not overlap the destination.
#[inline]
pub(crate) unsafe fn store(src: *const u8, dst: *mut u8, len: usize) {
    #[cfg(target_arch = "x86_64")]
    if len >= BULK {
        // SAFETY: the caller's contract is `movsb`'s.
        unsafe { movsb(src, dst, len) };
        return;
    }
    let mut i = 0;
    let head = dst.align_offset(WORD).min(len);
    while i < head {
        // SAFETY: in bounds (caller); AtomicU8 has the alignment and size of u8.
        unsafe { (*(dst.add(i) as *const AtomicU8)).store(*src.add(i), Relaxed) };
        i += 1;
    }
    while len - i >= WORD {
        // SAFETY: `dst + i` is word-aligned and in bounds; the private side is read unaligned.
        unsafe {
            let w = src.add(i).cast::<usize>().read_unaligned();
            (*(dst.add(i) as *const AtomicUsize)).store(w, Relaxed);
        }
        i += WORD;
    }
    while i < len {
        // SAFETY: as for the head.
        unsafe { (*(dst.add(i) as *const AtomicU8)).store(*src.add(i), Relaxed) };
        i += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_every_alignment_and_length() {
        // Past the bulk threshold too, at every alignment.
        let shared: Vec<u8> = (0..1200u32).map(|i| (i * 7 % 251) as u8).collect();
        for off in 0..9 {
            for len in (0..100).chain(500..530).chain([1000, 1191 - off]) {
                let mut out = vec![0xaau8; len];
                // SAFETY: both ranges are in bounds of live vectors that do not overlap.
                unsafe { load(shared.as_ptr().add(off), out.as_mut_ptr(), len) };
                assert_eq!(out, &shared[off..off + len]);
                let mut dst = vec![0u8; 1200];
                // SAFETY: as above.
                unsafe { store(out.as_ptr(), dst.as_mut_ptr().add(off), len) };
                assert_eq!(&dst[off..off + len], &shared[off..off + len]);
                assert!(dst[..off].iter().all(|&b| b == 0));
                assert!(dst[off + len..].iter().all(|&b| b == 0));
            }
        }
    }
}
