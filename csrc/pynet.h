/* pynet.h — include this to use pynet from C. The declarations live in pynet_api.h, which is kept
 * free of preprocessor lines so that cffi can read it as its cdef; this wrapper adds what a C
 * compiler needs around it. */
#ifndef PYNET_H
#define PYNET_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#include "pynet_api.h"

#ifdef __cplusplus
}
#endif

#endif
