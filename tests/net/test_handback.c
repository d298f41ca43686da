/*
 * test_handback.c: finished work handed back from threads to a loop
 * (src/net/handback.c): every link posted by two threads is delivered once,
 * on the loop's thread, each thread's in the order it posted them; a
 * delivery may post again (delivered on a later turn, not lost); links
 * posted and not delivered are given back by handback_take, in order.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include <event2/event.h>
#include <pthread.h>

#include "net/handback.h"

#define PER_THREAD 5000

struct item {
	struct handback_link back;
	int thread, seq;
};

struct state {
	struct handback *h;
	pthread_t loop_thread;
	int delivered, wrong_thread, out_of_order, reposted;
	int last[2];
	struct item again; /* posted by a delivery */
	struct event_base *base;
};

static void
on_item(void *arg, struct handback_link *l)
{
	struct state *s = arg;
	struct item *it = HANDBACK_OF(l, struct item, back);

	if (!pthread_equal(pthread_self(), s->loop_thread))
		s->wrong_thread++;
	if (it == &s->again) {
		s->reposted++;
	} else {
		if (it->seq != s->last[it->thread] + 1)
			s->out_of_order++;
		s->last[it->thread] = it->seq;
		s->delivered++;
		if (s->delivered == PER_THREAD) /* a delivery posts: a later turn delivers it */
			handback_post(s->h, &s->again.back);
		free(it);
	}
	if (s->delivered == 2 * PER_THREAD && s->reposted == 1)
		event_base_loopbreak(s->base);
}

struct poster {
	struct state *s;
	int thread;
};

static void *
poster_main(void *arg)
{
	struct poster *p = arg;

	for (int i = 1; i <= PER_THREAD; i++) {
		struct item *it = calloc(1, sizeof(*it));
		it->thread = p->thread;
		it->seq = i;
		handback_post(p->s->h, &it->back);
	}
	return NULL;
}

static void
on_timeout(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	event_base_loopbreak(arg);
}

static void
test_two_threads(void **unused)
{
	struct state s = {0};
	struct poster p[2] = {{&s, 0}, {&s, 1}};
	pthread_t t[2];
	const char *err = NULL;
	struct timeval ten = {10, 0};

	(void)unused;
	s.base = event_base_new();
	s.loop_thread = pthread_self();
	s.h = handback_new(s.base, "test", on_item, &s, &err);
	assert_non_null(s.h);
	for (int i = 0; i < 2; i++)
		assert_int_equal(pthread_create(&t[i], NULL, poster_main, &p[i]), 0);
	struct event *guard = evtimer_new(s.base, on_timeout, s.base);
	evtimer_add(guard, &ten);
	event_base_dispatch(s.base);
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	assert_int_equal(s.delivered, 2 * PER_THREAD);
	assert_int_equal(s.reposted, 1);
	assert_int_equal(s.wrong_thread, 0);
	assert_int_equal(s.out_of_order, 0);
	assert_int_equal(s.last[0], PER_THREAD);
	assert_int_equal(s.last[1], PER_THREAD);
	assert_null(handback_take(s.h));
	event_free(guard);
	handback_free(s.h);
	event_base_free(s.base);
}

static void
never(void *arg, struct handback_link *l)
{
	(void)l;
	(*(int *)arg)++;
}

static void
test_take(void **unused)
{
	struct event_base *base = event_base_new();
	struct item it[3] = {0};
	const char *err = NULL;
	int calls = 0;

	(void)unused;
	struct handback *h = handback_new(base, "test", never, &calls, &err);
	assert_non_null(h);
	for (int i = 0; i < 3; i++)
		handback_post(h, &it[i].back);
	struct handback_link *l = handback_take(h);
	assert_ptr_equal(l, &it[0].back);
	assert_ptr_equal(l->next, &it[1].back);
	assert_ptr_equal(l->next->next, &it[2].back);
	assert_null(l->next->next->next);
	assert_null(handback_take(h));
	/* the wake-up written for them finds nothing to deliver */
	event_base_loop(base, EVLOOP_NONBLOCK);
	assert_int_equal(calls, 0);
	/* and the list works on after a take */
	handback_post(h, &it[0].back);
	event_base_loop(base, EVLOOP_NONBLOCK);
	assert_int_equal(calls, 1);
	handback_free(h);
	handback_free(NULL);
	event_base_free(base);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_two_threads),
	    cmocka_unit_test(test_take),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
