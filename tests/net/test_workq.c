/*
 * test_workq.c: jobs on a thread of their own (src/net/workq.c): run on the
 * queue's thread in order, done and released on the caller's loop, cancels
 * (waiting, running) without done, the cap, a stop with jobs left.
 */
#include <event2/event.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#include <cmocka.h>

#include "net/workq.h"

struct job {
	int id;
	pthread_t ran_on, done_on, released_on;
	bool ran, done, released;
	volatile bool started; /* run has begun (set under lock) */
	unsigned slow_ms;
	int *order; /* where the run order is written */
	int *n_order;
	pthread_mutex_t *lock;
};

static void
j_run(void *arg)
{
	struct job *j = arg;

	pthread_mutex_lock(j->lock);
	j->started = true;
	pthread_mutex_unlock(j->lock);
	if (j->slow_ms)
		usleep(j->slow_ms * 1000);
	j->ran_on = pthread_self();
	j->ran = true;
	pthread_mutex_lock(j->lock);
	j->order[(*j->n_order)++] = j->id;
	pthread_mutex_unlock(j->lock);
}

static void
j_done(void *arg)
{
	struct job *j = arg;

	j->done_on = pthread_self();
	j->done = true;
}

static void
j_release(void *arg)
{
	struct job *j = arg;

	j->released_on = pthread_self();
	j->released = true;
}

/* Run base until every job is released (or a second passes). */
static void
settle(struct event_base *base, struct job *v, size_t n)
{
	for (int turn = 0; turn < 1000; turn++) {
		bool all = true;
		for (size_t i = 0; i < n; i++)
			all = all && v[i].released;
		if (all)
			return;
		event_base_loop(base, EVLOOP_NONBLOCK);
		usleep(1000);
	}
	fail_msg("jobs not released within a second");
}

static void
test_order_and_threads(void **state)
{
	struct event_base *base = event_base_new();
	pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
	struct job v[20] = {0};
	int order[20], n_order = 0;
	const char *err = NULL;
	struct workq *q = workq_start(base, "test", &err);

	(void)state;
	assert_non_null(q);
	for (int i = 0; i < 20; i++) {
		v[i] = (struct job){.id = i, .order = order, .n_order = &n_order, .lock = &lock};
		assert_non_null(workq_add(q, &v[i], j_run, j_done, j_release, 0));
	}
	assert_int_equal(workq_pending(q), 20);
	settle(base, v, 20);
	assert_int_equal(n_order, 20);
	for (int i = 0; i < 20; i++) {
		assert_int_equal(order[i], i); /* in the order queued */
		assert_true(v[i].done);
		assert_false(pthread_equal(v[i].ran_on, pthread_self()));
		assert_true(pthread_equal(v[i].done_on, pthread_self()));
		assert_true(pthread_equal(v[i].released_on, pthread_self()));
	}
	assert_int_equal(workq_pending(q), 0);
	workq_stop(&q);
	assert_null(q);
	event_base_free(base);
}

static void
test_cancel_and_cap(void **state)
{
	struct event_base *base = event_base_new();
	pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
	struct job v[3] = {0};
	struct workq_job *h[3];
	int order[3], n_order = 0;
	const char *err = NULL;
	struct workq *q = workq_start(base, "test", &err);

	(void)state;
	for (int i = 0; i < 3; i++)
		v[i] = (struct job){.id = i, .order = order, .n_order = &n_order, .lock = &lock};
	v[0].slow_ms = 100;
	for (int i = 0; i < 3; i++)
		assert_non_null(h[i] = workq_add(q, &v[i], j_run, j_done, j_release, 3));
	/* the cap: three queued */
	struct job extra = {.id = 9, .order = order, .n_order = &n_order, .lock = &lock};
	assert_null(workq_add(q, &extra, j_run, j_done, j_release, 3));
	usleep(50 * 1000);  /* job 0 is running now */
	workq_cancel(h[0]); /* running: released once run, no done */
	workq_cancel(h[2]); /* waiting: released at once, never run */
	assert_true(v[2].released);
	assert_false(v[2].ran);
	settle(base, v, 3);
	assert_true(v[0].ran);
	assert_false(v[0].done);
	assert_true(v[1].done);
	assert_false(v[2].done);
	assert_int_equal(workq_pending(q), 0);
	workq_stop(&q);
	event_base_free(base);
}

static void
test_stop_with_jobs(void **state)
{
	struct event_base *base = event_base_new();
	pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
	struct job v[5] = {0};
	int order[5], n_order = 0;
	const char *err = NULL;
	struct workq *q = workq_start(base, "test", &err);

	(void)state;
	for (int i = 0; i < 5; i++) {
		v[i] = (struct job){
		    .id = i, .slow_ms = 30, .order = order, .n_order = &n_order, .lock = &lock};
		assert_non_null(workq_add(q, &v[i], j_run, j_done, j_release, 0));
	}
	usleep(10 * 1000);
	workq_stop(&q); /* joins after the running job; the rest released, no done */
	for (int i = 0; i < 5; i++) {
		assert_true(v[i].released);
		assert_false(v[i].done);
	}
	assert_true(n_order <= 1); /* at most the one running when stopped */
	event_base_free(base);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_order_and_threads),
	    cmocka_unit_test(test_cancel_and_cap),
	    cmocka_unit_test(test_stop_with_jobs),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
