/*
 * timers.h: libevent timers armed through the base's common timeouts.
 *
 * Every connection re-arms a timer a few times per request (the idle
 * keep-alive deadline, the upstream request's no-progress clock, a pooled
 * connection's idle time), always with one of a handful of durations. A plain
 * evtimer_add puts each in the base's min-heap, O(log n) per add and delete
 * with n the timers of every connection; a common timeout keeps the events of
 * one duration in a queue, where an add is an append at the tail (they expire
 * in the order they were armed). libevent offers this
 * (event_base_init_common_timeout); this file only remembers, per owner
 * (one per event base), the few durations asked for.
 *
 * Header-only: each module that arms timers links libevent itself.
 */
#ifndef ABQ_LIB_TIMERS_H
#define ABQ_LIB_TIMERS_H

#include <event2/event.h>
#include <stddef.h>

#define TIMER_SET_MAX 8

struct timer_set {
	unsigned n;
	struct {
		unsigned ms;
		const struct timeval *tv; /* the base's common timeout, or NULL: plain */
	} e[TIMER_SET_MAX];
};

/*
 * Arm ev (a timer of base) for ms milliseconds. A duration not seen before
 * becomes a common timeout of base while the set has room; past that, or for
 * 0 ms, or if libevent refuses, the timer is armed the plain way.
 */
static inline int
timer_set_add(struct timer_set *s, struct event_base *base, struct event *ev, unsigned ms)
{
	struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
	const struct timeval *common = NULL;
	unsigned i;

	for (i = 0; i < s->n && s->e[i].ms != ms; i++)
		;
	if (i < s->n) {
		common = s->e[i].tv;
	} else if (ms != 0 && s->n < TIMER_SET_MAX) {
		common = event_base_init_common_timeout(base, &tv);
		s->e[s->n].ms = ms;
		s->e[s->n].tv = common;
		s->n++;
	}
	return evtimer_add(ev, common != NULL ? common : &tv);
}

/* The same for a whole number of seconds (past 49 days, plainly). */
static inline int
timer_set_add_s(struct timer_set *s, struct event_base *base, struct event *ev, unsigned sec)
{
	struct timeval tv = {.tv_sec = sec, .tv_usec = 0};

	if (sec > 4000000u)
		return evtimer_add(ev, &tv);
	return timer_set_add(s, base, ev, sec * 1000u);
}

/*
 * The time of the loop's current pass, for a duration between two passes:
 * libevent reads the clock once when a pass begins and keeps it
 * (event_base_gettimeofday_cached), so a request's clocks cost no clock read
 * of their own. A duration so measured includes the time the request waited
 * in its passes, and is on the wall clock: one taken across a clock step can
 * be off (or negative; loop_seconds_since gives 0 then).
 */
static inline void
loop_time(struct event_base *base, struct timeval *tv)
{
	event_base_gettimeofday_cached(base, tv);
}

/* Seconds from t0 (a loop_time) to the current pass, never negative. */
static inline double
loop_seconds_since(struct event_base *base, const struct timeval *t0)
{
	struct timeval now;
	double d;

	event_base_gettimeofday_cached(base, &now);
	d = (double)(now.tv_sec - t0->tv_sec) + (double)(now.tv_usec - t0->tv_usec) / 1e6;
	return d > 0 ? d : 0;
}

#endif
