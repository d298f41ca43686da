/*
 * test_timers.c: src/lib/timers.h, timers armed through libevent's common
 * timeouts: each fires once, after its duration (the last arming's), for
 * remembered durations, re-armed ones, a full set (plain timers past it),
 * zero and whole seconds; and the loop's cached time for durations.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <event2/event.h>
#include <time.h>

#include "lib/timers.h"

#define NEV 12

static struct {
	int order[NEV];
	int64_t at[NEV];
	int count[NEV];
	int n;
} fired;

static int64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
on_timer(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	fired.order[fired.n] = (int)(intptr_t)arg;
	fired.count[(intptr_t)arg]++;
	fired.at[fired.n] = now_ms();
	fired.n++;
}

static void
test_timer_set(void **state)
{
	/* Durations in ms, some repeated; 10 distinct ones overflow the set of 8. */
	static const unsigned ms[NEV] = {90, 30, 60, 30, 0, 120, 150, 180, 210, 240, 270, 15};
	struct event_base *base = event_base_new();
	struct timer_set set = {0};
	struct event *ev[NEV];
	int64_t t0, coarse_ms;
	struct timespec res;

	(void)state;
	/*
	 * libevent keeps time with CLOCK_MONOTONIC_COARSE, which moves on the
	 * kernel's tick; on a virtual machine a tick can come one tick late, so
	 * the coarse clock lags CLOCK_MONOTONIC by up to two of its steps (7.8 ms
	 * measured with a 4 ms step on the development VM), and a timer may fire
	 * that much before its duration by CLOCK_MONOTONIC.
	 */
	clock_getres(CLOCK_MONOTONIC_COARSE, &res);
	coarse_ms = 2 * ((int64_t)res.tv_sec * 1000 + res.tv_nsec / 1000000) + 1;
	assert_non_null(base);
	for (int i = 0; i < NEV; i++) {
		ev[i] = evtimer_new(base, on_timer, (void *)(intptr_t)i);
		assert_non_null(ev[i]);
	}
	t0 = now_ms();
	/* Armed once at 500 ms, then re-armed at 60: only the second counts. */
	assert_int_equal(timer_set_add(&set, base, ev[2], 500), 0);
	for (int i = 0; i < NEV; i++)
		assert_int_equal(timer_set_add(&set, base, ev[i], ms[i]), 0);
	assert_int_equal(set.n, TIMER_SET_MAX);
	event_base_dispatch(base);
	assert_int_equal(fired.n, NEV);
	for (int i = 0; i < NEV; i++)
		assert_int_equal(fired.count[i], 1);
	for (int k = 0; k < NEV; k++) {
		int i = fired.order[k];
		int64_t late = fired.at[k] - t0 - (int64_t)ms[i];

		/*
		 * Never early by more than the coarse clock's lag (above); no later
		 * than the loop's own slack on a loaded machine.
		 */
		if (late < -coarse_ms || late > 2000)
			fail_msg("timer %d (%u ms) fired %lld ms off", i, ms[i], (long long)late);
	}
	/* Whole seconds: the same path, and past 49 days a plain timer. */
	fired.n = 0;
	t0 = now_ms();
	assert_int_equal(timer_set_add_s(&set, base, ev[0], 1), 0);
	assert_int_equal(timer_set_add_s(&set, base, ev[1], 5000000), 0);
	assert_true(evtimer_pending(ev[1], NULL));
	event_del(ev[1]);
	event_base_dispatch(base);
	assert_int_equal(fired.n, 1);
	assert_true(fired.at[0] - t0 >= 1000 - coarse_ms);
	for (int i = 0; i < NEV; i++)
		event_free(ev[i]);
	event_base_free(base);
}

static struct timeval lt0;
static double lt_seen = -1;

static void
on_loop_timer(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	lt_seen = loop_seconds_since(arg, &lt0);
}

/* loop_time and loop_seconds_since: the pass's time, a duration across passes. */
static void
test_loop_time(void **state)
{
	struct event_base *base = event_base_new();
	struct event *ev = evtimer_new(base, on_loop_timer, base);
	struct timeval tv = {0, 80000}, future;

	(void)state;
	loop_time(base, &lt0);
	evtimer_add(ev, &tv);
	event_base_dispatch(base);
	/* At least the timer's 80 ms (less a coarse tick), and not absurdly more. */
	assert_true(lt_seen >= 0.07 && lt_seen < 5.0);
	/* A start in the future (a stepped clock): 0, never negative. */
	loop_time(base, &future);
	future.tv_sec += 10;
	assert_true(loop_seconds_since(base, &future) == 0);
	event_free(ev);
	event_base_free(base);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_timer_set),
	    cmocka_unit_test(test_loop_time),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
