/*
 * view.h — the broker's read view (view.c; the format and the readers' side are
 * runtime/src/manager_view.[ch]). Every function but open and close runs under the
 * broker's mutex, and does nothing while the broker has no view.
 */
#ifndef SHOAL_BROKER_VIEW_H
#define SHOAL_BROKER_VIEW_H

#include <stddef.h>
#include <stdint.h>

#include "shoal/common.h"

struct shoal_broker;
struct bobj;

/* Publishes the view of the broker listening on shm://name (NAME:view, made with
 * attr; a leftover of an earlier broker is replaced). Returns 0 or a negative
 * SHOAL_E* code (the broker then runs without a view). */
int broker__view_open(struct shoal_broker *b, const char *name, const shoal_attr *attr);
/* Withdraws the view (readers stop trusting it at once) and removes it. */
void broker__view_close(struct shoal_broker *b);

/* Object o changed (or is going away: gone, and its slot is given back): its
 * generation moves, so no reply read before the change is current any more. Called
 * for every change, before its reply is handed over. */
void broker__view_bump(struct shoal_broker *b, struct bobj *o, int gone);
/* The reply reply[rlen] of the pure read req[len] on o, run just now: staged, to be
 * published by broker__view_publish if o has not changed by then. */
void broker__view_stage(struct shoal_broker *b, struct bobj *o, const void *req,
                        size_t len, const void *reply, size_t rlen);
/* After the commit (committed 0: it failed): publishes the staged replies whose
 * objects are unchanged, and drops the stage. */
void broker__view_publish(struct shoal_broker *b, int committed);

/* Checks core.c's operations against the clients' list of pure operations
 * (SHOAL_VIEW_PURE_OPS): NULL when every F_PURE operation's name is listed and every
 * listed name is that of an F_PURE operation, else the first name that is not. */
const char *broker__view_ops_check(void);

#endif
