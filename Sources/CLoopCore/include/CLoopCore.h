/* CLoopCore — LoopKit's C11 hot paths. Umbrella header. */
#ifndef CLOOPCORE_H
#define CLOOPCORE_H

#include "lk_task.h"
#include "lk_mpsc.h"
#include "lk_chunkq.h"
#include "lk_spscq.h"
#include "lk_ingress.h"
#include "lk_ring.h"
#include "lk_wake.h"
#include "lk_gate.h"
#include "lk_poller.h"
#include "lk_io.h"
#include "lk_thread.h"
#include "lk_clock.h"
#include "lk_affinity.h"

#endif
