// blesmp: esp-nimble's allocator hooks, on the MicroPython GC heap as the mynewt build's
// malloc is (nimble_malloc keeps the blocks reachable from a root pointer).
#ifndef BLESMP_ESPNIMBLE_MEM_H
#define BLESMP_ESPNIMBLE_MEM_H
#include <stddef.h>
void *nimble_malloc(size_t size);
void nimble_free(void *ptr);
void *nimble_realloc(void *ptr, size_t size);
void *blesmp_nimble_calloc(size_t n, size_t size);
#define nimble_platform_mem_malloc(size) nimble_malloc(size)
#define nimble_platform_mem_calloc(n, size) blesmp_nimble_calloc(n, size)
#define nimble_platform_mem_free(ptr) nimble_free(ptr)
#endif
