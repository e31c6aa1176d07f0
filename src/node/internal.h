/* internal.h - helpers shared inside src/node. */
#ifndef VN_NODE_INTERNAL_H
#define VN_NODE_INTERNAL_H

#include <stdint.h>

/* Wall clock in unix ms. */
int64_t node_now_ms(void);

#endif
