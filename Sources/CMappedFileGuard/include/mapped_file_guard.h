#ifndef MAPPED_FILE_GUARD_H
#define MAPPED_FILE_GUARD_H

#include <stddef.h>

// Turns the SIGBUS of a memory-mapped file that shrank (truncated or rewritten in place by
// another program while it is mapped) into a flag the reader checks, instead of a crash.
//
// A registered mapping whose page faults past the file's new end gets a zero-filled page mapped
// over the lost one, the mapping is marked, and the faulting thread continues, reading zeros;
// the reader then asks `mapped_file_guard_shrank` at its next check point and reports an error
// naming the file. A SIGBUS outside every registered mapping goes to the handler that was there
// before (or kills the process as it would have).

/// Registers [base, base + length) and installs the handler on first use; returns a slot for
/// the other calls, or -1 when every slot is taken (the mapping is then unguarded).
int mapped_file_guard_register(const void *base, size_t length);

/// Forgets a slot (before the mapping is unmapped).
void mapped_file_guard_unregister(int slot);

/// 1 when a page of the slot's mapping faulted (the file shrank under it), else 0.
int mapped_file_guard_shrank(int slot);

#endif
