#define _GNU_SOURCE
#include "CLinux.h"
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/wait.h>
#include <sys/syscall.h>

pid_t CLinux_gettid(void) { return (pid_t)syscall(SYS_gettid); }

int CLinux_pipe2(int fds[2], int flags) { return pipe2(fds, flags); }

int CLinux_set_current_thread_name(const char *name) {
    char shortName[16];
    int i = 0;
    for (; i < 15 && name[i]; i++) shortName[i] = name[i];
    shortName[i] = 0;
    return pthread_setname_np(pthread_self(), shortName);
}

int CLinux_spawn_addclosefrom(posix_spawn_file_actions_t *actions, int lowfd) {
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 34))
    return posix_spawn_file_actions_addclosefrom_np(actions, lowfd);
#else
    (void)actions; (void)lowfd;
    return ENOSYS;
#endif
}

int CLinux_WIFEXITED(int status) { return WIFEXITED(status); }
int CLinux_WEXITSTATUS(int status) { return WEXITSTATUS(status); }
int CLinux_WIFSIGNALED(int status) { return WIFSIGNALED(status); }
int CLinux_WTERMSIG(int status) { return WTERMSIG(status); }

extern void __tsan_init(void) __attribute__((weak));
int CLinux_tsan_enabled(void) { return __tsan_init != 0; }

/* The thread sanitizer's runtime sleeps a second before every sanitized
   process exits (atexit_sleep_ms=1000), so other threads can still report.
   In a process that runs under it (`swift test --sanitize=thread`), children
   spawned later (the package's own sanitized executables) skip that pause:
   a test that times a child's exit measures the child, not the sanitizer.
   Runs before main, while the process has one thread, so setenv is safe;
   the runtime read TSAN_OPTIONS for this process earlier, so only children
   see the change. An explicit atexit_sleep_ms is left alone. */
__attribute__((constructor)) static void CLinux_quick_sanitized_exits(void) {
    if (!CLinux_tsan_enabled()) return;
    const char *current = getenv("TSAN_OPTIONS");
    if (current && strstr(current, "atexit_sleep_ms")) return;
    char options[1024];
    if (current && *current) {
        if (snprintf(options, sizeof options, "%s:atexit_sleep_ms=0", current) >= (int)sizeof options) return;
    } else {
        strcpy(options, "atexit_sleep_ms=0");
    }
    setenv("TSAN_OPTIONS", options, 1);
}

int CLinux_spawn_addchdir(posix_spawn_file_actions_t *actions, const char *path) {
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 29))
    return posix_spawn_file_actions_addchdir_np(actions, path);
#else
    (void)actions; (void)path;
    return ENOSYS;
#endif
}

int64_t CLinux_atomic_load(const int64_t *address) { return __atomic_load_n(address, __ATOMIC_SEQ_CST); }
void CLinux_atomic_store(int64_t *address, int64_t value) { __atomic_store_n(address, value, __ATOMIC_SEQ_CST); }
int64_t CLinux_atomic_fetch_add(int64_t *address, int64_t delta) { return __atomic_fetch_add(address, delta, __ATOMIC_SEQ_CST); }

int CLinux_shared_mutex_init(pthread_mutex_t *mutex) {
    pthread_mutexattr_t attributes;
    int rc = pthread_mutexattr_init(&attributes);
    if (rc) return rc;
    rc = pthread_mutexattr_setpshared(&attributes, PTHREAD_PROCESS_SHARED);
    if (!rc) rc = pthread_mutexattr_setrobust(&attributes, PTHREAD_MUTEX_ROBUST);
    if (!rc) rc = pthread_mutex_init(mutex, &attributes);
    pthread_mutexattr_destroy(&attributes);
    return rc;
}
int CLinux_atomic_compare_exchange(int64_t *address, int64_t expected, int64_t desired) {
    return __atomic_compare_exchange_n(address, &expected, desired, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
}
