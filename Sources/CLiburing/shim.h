/* Lets SwiftPM resolve liburing through pkg-config; only CLoopCore's poller_uring.c includes liburing. */
#include <liburing.h>
