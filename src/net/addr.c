/*
 * addr.c: compact peer addresses and the trusted-proxy CIDR list.
 *
 * Everything here works on numeric addresses only: the network layer never
 * resolves names, and a peer-supplied X-Forwarded-For value is parsed with
 * inet_pton on a bounded copy, so hostile bytes can only fail to parse.
 */
#include "net/net.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "lib/util.h"

/* Convert a kernel sockaddr into the compact form, folding v4-mapped v6. */
int
net_addr_from_sockaddr(struct net_addr *a, const struct sockaddr *sa)
{
	memset(a, 0, sizeof(*a));
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;
		a->family = AF_INET;
		memcpy(a->bytes, &s4->sin_addr, 4);
		return 0;
	}
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;
		if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr)) {
			a->family = AF_INET;
			memcpy(a->bytes, &s6->sin6_addr.s6_addr[12], 4);
		} else {
			a->family = AF_INET6;
			memcpy(a->bytes, &s6->sin6_addr, 16);
		}
		return 0;
	}
	return -1;
}

/* Parse a numeric address of at most len bytes (not NUL-terminated). */
int
net_addr_parse(struct net_addr *a, const char *s, size_t len)
{
	char buf[INET6_ADDRSTRLEN];
	struct in6_addr a6;

	memset(a, 0, sizeof(*a));
	if (len == 0 || len >= sizeof(buf))
		return -1;
	memcpy(buf, s, len);
	buf[len] = '\0';
	if (inet_pton(AF_INET, buf, a->bytes) == 1) {
		a->family = AF_INET;
		return 0;
	}
	if (inet_pton(AF_INET6, buf, &a6) == 1) {
		if (IN6_IS_ADDR_V4MAPPED(&a6)) {
			a->family = AF_INET;
			memcpy(a->bytes, &a6.s6_addr[12], 4);
		} else {
			a->family = AF_INET6;
			memcpy(a->bytes, &a6, 16);
		}
		return 0;
	}
	return -1;
}

/* The usual textual form; "?" for an address that cannot be formatted. */
const char *
net_addr_format(const struct net_addr *a, char *buf, size_t size)
{
	if (inet_ntop(a->family, a->bytes, buf, (socklen_t)size) == NULL) {
		if (size > 1) {
			buf[0] = '?';
			buf[1] = '\0';
		}
	}
	return buf;
}

/* Two addresses are equal when family and the family's bytes agree. */
bool
net_addr_eq(const struct net_addr *a, const struct net_addr *b)
{
	return a->family == b->family &&
	       memcmp(a->bytes, b->bytes, a->family == AF_INET ? 4 : 16) == 0;
}

/* FNV-1a over the address bytes: for the per-address connection table. */
uint32_t
net_addr_hash(const struct net_addr *a)
{
	uint32_t h = 2166136261u;
	size_t n = a->family == AF_INET ? 4 : 16;

	for (size_t i = 0; i < n; i++) {
		h ^= a->bytes[i];
		h *= 16777619u;
	}
	return h;
}

/* Parse one "addr[/prefix]" token of len bytes. */
static int
cidr_parse_one(struct net_cidr *c, const char *s, size_t len)
{
	const char *slash = memchr(s, '/', len);
	size_t alen = slash ? (size_t)(slash - s) : len;
	unsigned max, prefix;

	if (net_addr_parse(&c->net, s, alen) == -1)
		return -1;
	max = c->net.family == AF_INET ? 32 : 128;
	prefix = max;
	if (slash) {
		const char *p = slash + 1, *end = s + len;
		if (p == end || end - p > 3)
			return -1;
		prefix = 0;
		for (; p < end; p++) {
			if (*p < '0' || *p > '9')
				return -1;
			prefix = prefix * 10 + (unsigned)(*p - '0');
		}
		if (prefix > max)
			return -1;
	}
	c->prefix = (uint8_t)prefix;
	return 0;
}

/* Split on commas and white space and parse every token. */
int
net_cidr_parse_list(const char *s, struct net_cidr **list_r, size_t *n_r, const char **errstr)
{
	struct net_cidr *list = NULL;
	size_t n = 0;

	*list_r = NULL;
	*n_r = 0;
	if (s == NULL)
		return 0;
	while (*s) {
		size_t len;

		while (*s == ',' || *s == ' ' || *s == '\t')
			s++;
		len = strcspn(s, ", \t");
		if (len == 0)
			break;
		list = xrealloc(list, (n + 1) * sizeof(*list));
		if (cidr_parse_one(&list[n], s, len) == -1) {
			free(list);
			*errstr = "invalid address or CIDR in trusted_proxies";
			return -1;
		}
		n++;
		s += len;
	}
	*list_r = list;
	*n_r = n;
	return 0;
}

/* True if a falls inside one of the n networks. */
bool
net_cidr_match(const struct net_cidr *list, size_t n, const struct net_addr *a)
{
	for (size_t i = 0; i < n; i++) {
		const struct net_cidr *c = &list[i];
		unsigned full = c->prefix / 8, rest = c->prefix % 8;

		if (c->net.family != a->family)
			continue;
		if (memcmp(c->net.bytes, a->bytes, full) != 0)
			continue;
		if (rest) {
			uint8_t mask = (uint8_t)(0xff << (8 - rest));
			if ((c->net.bytes[full] & mask) != (a->bytes[full] & mask))
				continue;
		}
		return true;
	}
	return false;
}
