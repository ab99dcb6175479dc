/*
 * shoal.h — the whole public API of libshoal.
 */
#ifndef SHOAL_H
#define SHOAL_H

#include "shoal/common.h"
#include "shoal/type.h"
#include "shoal/segment.h"
#include "shoal/sync.h"
#include "shoal/value.h"
#include "shoal/queue.h"
#include "shoal/pipe.h"
#include "shoal/inspect.h"
#include "shoal/version.h"
#include "shoal/loop.h"
#include "shoal/rpc.h"
#include "shoal/manager.h"

#endif
