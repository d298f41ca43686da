/*
 * handback.c: finished work handed back from a thread to an event loop
 * (see handback.h).
 *
 * A singly linked list with a tail pointer under a mutex, and an eventfd:
 * the poster that makes the list non-empty writes it; the loop's event reads
 * it, takes the whole list under the mutex and delivers it outside the
 * mutex, so a delivery may post (or free jobs) without a deadlock.
 */
#include <event2/event.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/util.h"
#include "net/handback.h"

struct handback {
	pthread_mutex_t lock;
	struct handback_link *head, **tail; /* under lock */
	int fd;                             /* eventfd: posters to the loop */
	struct event *ev;                   /* on the loop, reads fd */
	const char *who;
	handback_deliver_cb *deliver;
	void *arg;
};

/* Take the whole list (any thread). */
static struct handback_link *
take(struct handback *h)
{
	pthread_mutex_lock(&h->lock);
	struct handback_link *l = h->head;
	h->head = NULL;
	h->tail = &h->head;
	pthread_mutex_unlock(&h->lock);
	return l;
}

/* The loop: deliver everything posted so far, in order. */
static void
on_ready(evutil_socket_t fd, short what, void *arg)
{
	struct handback *h = arg;
	struct handback_link *l, *next;
	uint64_t n;

	(void)what;
	if (read(fd, &n, sizeof(n)) < 0) {
		/* EAGAIN: an earlier wake-up already emptied it */
	}
	for (l = take(h); l != NULL; l = next) {
		next = l->next; /* the delivery may free l */
		h->deliver(h->arg, l);
	}
}

struct handback *
handback_new(struct event_base *base, const char *who, handback_deliver_cb *deliver, void *arg,
             const char **errstr)
{
	struct handback *h = xcalloc(1, sizeof(*h));

	pthread_mutex_init(&h->lock, NULL);
	h->tail = &h->head;
	h->fd = -1;
	h->who = who;
	h->deliver = deliver;
	h->arg = arg;
	if ((h->fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0) {
		*errstr = "eventfd failed";
		goto fail;
	}
	h->ev = event_new(base, h->fd, EV_READ | EV_PERSIST, on_ready, h);
	if (h->ev == NULL || event_add(h->ev, NULL) != 0) {
		*errstr = "cannot watch the eventfd";
		goto fail;
	}
	return h;
fail:
	handback_free(h);
	return NULL;
}

void
handback_post(struct handback *h, struct handback_link *l)
{
	uint64_t one = 1;

	l->next = NULL;
	pthread_mutex_lock(&h->lock);
	bool first = h->head == NULL;
	*h->tail = l;
	h->tail = &l->next;
	pthread_mutex_unlock(&h->lock);
	if (first && write(h->fd, &one, sizeof(one)) < 0)
		log_warn("%s: cannot wake the event loop", h->who);
}

struct handback_link *
handback_take(struct handback *h)
{
	return take(h);
}

void
handback_free(struct handback *h)
{
	if (h == NULL)
		return;
	if (h->ev != NULL)
		event_free(h->ev);
	if (h->fd >= 0)
		close(h->fd);
	pthread_mutex_destroy(&h->lock);
	free(h);
}
