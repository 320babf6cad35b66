#pragma once
// The one C shim of the package for Linux calls that Swift's Glibc module does
// not export (declared only under _GNU_SOURCE, variadic, or macros), compiled
// with _GNU_SOURCE as SwiftNIO's CNIOLinux is. Swift calls these instead of
// looking symbols up at run time.
#include <sys/types.h>
#include <spawn.h>
#include <pthread.h>
#ifdef __linux__
#include <sys/epoll.h>   // listing 3.7's hand-written selector loop
#endif

/// gettid(2): the kernel id of the calling thread.
pid_t CLinux_gettid(void);

/// pipe2(2) with the given flags (O_CLOEXEC, O_NONBLOCK): both ends atomically.
int CLinux_pipe2(int fds[2], int flags);

/// pthread_setname_np(3) for the calling thread (at most 15 bytes are kept).
int CLinux_set_current_thread_name(const char *name);

/// Adds "close every descriptor >= lowfd" to a posix_spawn file-actions
/// object (glibc >= 2.34's posix_spawn_file_actions_addclosefrom_np).
/// Returns 0, or ENOSYS where the C library lacks it.
int CLinux_spawn_addclosefrom(posix_spawn_file_actions_t *actions, int lowfd);

/// The <sys/wait.h> status macros.
int CLinux_WIFEXITED(int status);
int CLinux_WEXITSTATUS(int status);
int CLinux_WIFSIGNALED(int status);
int CLinux_WTERMSIG(int status);

/// Whether this process runs under ThreadSanitizer (its runtime is linked in).
int CLinux_tsan_enabled(void);

/// Adds "change to this directory" to a posix_spawn file-actions object
/// (glibc >= 2.29's posix_spawn_file_actions_addchdir_np). 0, or ENOSYS.
int CLinux_spawn_addchdir(posix_spawn_file_actions_t *actions, const char *path);

#include <stdint.h>

/// Sequentially consistent 64-bit atomics at an arbitrary address (inside a
/// shared-memory mapping, where Swift's `Atomic` cannot be placed).
int64_t CLinux_atomic_load(const int64_t *address);
void CLinux_atomic_store(int64_t *address, int64_t value);
int64_t CLinux_atomic_fetch_add(int64_t *address, int64_t delta);

/// Initialises a process-shared, robust mutex in place (PTHREAD_PROCESS_SHARED,
/// PTHREAD_MUTEX_ROBUST). 0 or an errno value.
int CLinux_shared_mutex_init(pthread_mutex_t *mutex);
/// Atomically replaces *address with desired if it holds expected; returns whether it did.
int CLinux_atomic_compare_exchange(int64_t *address, int64_t expected, int64_t desired);
