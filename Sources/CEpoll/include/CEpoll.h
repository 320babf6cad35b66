#pragma once
// <sys/epoll.h> for Swift: Glibc's module map does not export it. Used only by
// the hand-written selector echo server of listing 3.7, the one place the
// curriculum writes its own event loop.
#ifdef __linux__
#include <sys/epoll.h>
#endif
