//! Keeps glibc malloc from handing freed request buffers back to the kernel.
//!
//! Each produce request lives in buffers of tens of KiB that are freed a
//! moment later. With glibc's defaults the arena is trimmed as soon as
//! 128 KiB sit free at its top, and larger buffers are mmap'd and unmapped
//! each time, so the next request faults its memory in again, page by page
//! (a tenth of the broker's CPU under a 100-byte produce load). The broker
//! keeps its arenas instead: free memory stays for the next request.

/// Free bytes an arena keeps at its top before trimming.
const TRIM_THRESHOLD: libc::c_int = 256 << 20;
/// Allocations up to this size come from the arenas, not from mmap.
const MMAP_THRESHOLD: libc::c_int = 32 << 20;

/// Sets the thresholds; a refusal only costs speed, so it is logged, not fatal.
pub fn keep_freed_memory() {
    for (name, param, value) in [
        ("M_TRIM_THRESHOLD", libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD),
        ("M_MMAP_THRESHOLD", libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD),
    ] {
        // SAFETY: mallopt only sets allocator parameters; it is called at
        // start-up before the executor threads exist.
        if unsafe { libc::mallopt(param, value) } != 1 {
            tracing::warn!(
                param = name,
                value,
                "mallopt refused; allocations may fault more"
            );
        }
    }
}
