// blesmp: esp-nimble's os/queue.h includes <sys/queue.h>, whose CIRCLEQ_* clash with glibc's
// when both are seen; MicroPython's pinned mynewt-nimble has a self-contained one.
#include "lib/mynewt-nimble/porting/nimble/include/os/queue.h"
