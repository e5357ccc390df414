//! Giving freed memory back to the system.
//!
//! glibc's allocator returns memory to the kernel only from the top of its
//! heap; pages freed in the middle stay resident. After a burst of
//! short-lived allocations (loading 10,000 device sections, computing the
//! subscriptions, a start-up replay of 100,000 states) several megabytes
//! stay counted in the daemon's RSS although nothing uses them:
//! `malloc_trim` hands every free page back (`MADV_DONTNEED`), from every
//! thread's heap (those of Paho's threads and of the link thread are not
//! trimmed otherwise). It walks the free lists, so it is called after such
//! bursts and once each round of hello counts is written (once a second:
//! the round's publishes are freed by then), not per message.

/// Releases the free pages of the allocator's heaps.
pub fn release_free_memory() {
    #[cfg(target_env = "gnu")]
    // SAFETY: malloc_trim only walks glibc's own free lists, under their
    // locks; any thread may call it at any time.
    unsafe {
        libc::malloc_trim(0);
    }
}
