/*
 * handback.h: finished work handed back from a thread to an event loop.
 *
 * The store queue, the submission queue and the parse queue each run their
 * jobs on a thread of their own and give every finished job back to the
 * loop that asked for it. A handback is that way back, written once: any
 * thread posts a job's link (handback_post); the loop's event, fed by an
 * eventfd written when the list goes from empty to not empty, calls
 * deliver(arg, link) for every posted link, in the order posted, on the
 * loop's thread. The list has a mutex of its own, so posting never waits
 * on the poster's other locks.
 *
 * Jobs embed a struct handback_link and recover themselves from it
 * (HANDBACK_OF). What a delivery does with a job (its callback, a cancel
 * check, the free) is the queue's.
 */
#ifndef ABQ_NET_HANDBACK_H
#define ABQ_NET_HANDBACK_H

#include <stddef.h>

struct event_base;
struct handback;

struct handback_link {
	struct handback_link *next;
};

/* The job of type T whose link member is field. */
#define HANDBACK_OF(l, T, field) ((T *)(void *)((char *)(l)-offsetof(T, field)))

typedef void handback_deliver_cb(void *arg, struct handback_link *l);

/*
 * A handback onto base: deliver(arg, l) runs there for every posted l.
 * who names the queue in messages ("parse"). NULL with *errstr (static).
 */
struct handback *handback_new(struct event_base *base, const char *who,
                              handback_deliver_cb *deliver, void *arg, const char **errstr);

/* Any thread: l goes to the end of the list; the loop is woken if it was empty. */
void handback_post(struct handback *h, struct handback_link *l);

/*
 * The loop's thread, once no thread posts any more (its threads joined):
 * every link posted and not delivered, in order (NULL-terminated through
 * next), for the caller to drop without delivering.
 */
struct handback_link *handback_take(struct handback *h);

/* Free h (after handback_take when links may be left). NULL is allowed. */
void handback_free(struct handback *h);

#endif
