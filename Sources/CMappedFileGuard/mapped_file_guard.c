#define _GNU_SOURCE
#include "mapped_file_guard.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

// Far more files than any command maps at once (a model's shards, a tokenizer, the data).
#define SLOTS 1024

// The handler reads these lock-free: a slot is live when its base is non-zero; the length is
// stored before the base (release) and the base cleared first on unregistering.
static struct {
    _Atomic uintptr_t base;
    _Atomic size_t length;
    _Atomic int shrank;
} slots[SLOTS];

static struct sigaction previous;
static uintptr_t page_size;
static pthread_once_t installed = PTHREAD_ONCE_INIT;
static pthread_mutex_t claiming = PTHREAD_MUTEX_INITIALIZER;

static void on_bus_error(int signal, siginfo_t *info, void *context) {
    uintptr_t address = (uintptr_t)info->si_addr;
    for (int i = 0; i < SLOTS; i++) {
        uintptr_t base = atomic_load_explicit(&slots[i].base, memory_order_acquire);
        if (base == 0 || address < base || address - base >= atomic_load_explicit(&slots[i].length, memory_order_relaxed)) continue;
        // A private, read-only page of zeros where the file's page was: the faulting load runs
        // again on return and reads zeros. mmap is a plain system call on Linux, safe here.
        void *page = (void *)(address & ~(page_size - 1));
        if (mmap(page, page_size, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) != MAP_FAILED) {
            atomic_store_explicit(&slots[i].shrank, 1, memory_order_release);
            return;
        }
        break;
    }
    // Not a guarded map (or no page could be had): what would have happened without us.
    if ((previous.sa_flags & SA_SIGINFO) && previous.sa_sigaction != NULL) {
        previous.sa_sigaction(signal, info, context);
    } else if (previous.sa_handler != SIG_DFL && previous.sa_handler != SIG_IGN) {
        previous.sa_handler(signal);
    } else {
        // Restore the default action; the faulting instruction runs again and ends the process.
        struct sigaction fallback;
        memset(&fallback, 0, sizeof fallback);
        fallback.sa_handler = SIG_DFL;
        sigaction(SIGBUS, &fallback, NULL);
    }
}

static void install(void) {
    page_size = (uintptr_t)sysconf(_SC_PAGESIZE);
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_sigaction = on_bus_error;
    action.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&action.sa_mask);
    sigaction(SIGBUS, &action, &previous);
}

int mapped_file_guard_register(const void *base, size_t length) {
    if (base == NULL || length == 0) return -1;
    pthread_once(&installed, install);
    pthread_mutex_lock(&claiming);
    int found = -1;
    for (int i = 0; i < SLOTS; i++) {
        if (atomic_load_explicit(&slots[i].base, memory_order_relaxed) == 0) {
            atomic_store_explicit(&slots[i].shrank, 0, memory_order_relaxed);
            atomic_store_explicit(&slots[i].length, length, memory_order_relaxed);
            atomic_store_explicit(&slots[i].base, (uintptr_t)base, memory_order_release);
            found = i;
            break;
        }
    }
    pthread_mutex_unlock(&claiming);
    return found;
}

void mapped_file_guard_unregister(int slot) {
    if (slot < 0 || slot >= SLOTS) return;
    atomic_store_explicit(&slots[slot].base, 0, memory_order_release);
}

int mapped_file_guard_shrank(int slot) {
    if (slot < 0 || slot >= SLOTS) return 0;
    return atomic_load_explicit(&slots[slot].shrank, memory_order_acquire);
}
