/*
 * net.h: the network layer's internal helpers, shared by http_server.c and
 * nothing above it.
 *
 * Addresses are kept in a compact binary form (struct net_addr, 20 bytes) so
 * that a held connection does not carry a 128-byte sockaddr_storage; IPv4
 * peers that arrive as IPv4-mapped IPv6 addresses are folded to IPv4 so that
 * "127.0.0.1/32" in trusted_proxies matches them. listen.c opens listening
 * sockets from "host:port" spellings.
 */
#ifndef ABQ_NET_H
#define ABQ_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct net_addr {
	uint8_t family; /* AF_INET or AF_INET6 */
	uint8_t bytes[16];
};

struct net_cidr {
	struct net_addr net;
	uint8_t prefix;
};

/* Fill *a from a sockaddr; IPv4-mapped IPv6 becomes IPv4. Returns 0 or -1. */
int net_addr_from_sockaddr(struct net_addr *a, const struct sockaddr *sa);
/* Parse a numeric address ("192.0.2.1", "2001:db8::1"). Returns 0 or -1. */
int net_addr_parse(struct net_addr *a, const char *s, size_t len);
/* Format into buf (at least 46 bytes); returns buf. */
const char *net_addr_format(const struct net_addr *a, char *buf, size_t size);
bool net_addr_eq(const struct net_addr *a, const struct net_addr *b);
uint32_t net_addr_hash(const struct net_addr *a);

/*
 * Parse a list of CIDRs separated by commas or white space ("10.0.0.0/8,
 * ::1"); a bare address is a /32 or /128. Returns 0 with a new array in
 * *list_r (free() it), or -1 with *errstr.
 */
int net_cidr_parse_list(const char *s, struct net_cidr **list_r, size_t *n_r, const char **errstr);
bool net_cidr_match(const struct net_cidr *list, size_t n, const struct net_addr *a);

/*
 * Open a non-blocking listening socket on "127.0.0.1:8080", "[::1]:8080",
 * "*:8080" or ":8080" (all IPv4 addresses). SO_REUSEADDR always, SO_REUSEPORT
 * when asked (several loops each with their own socket). Returns the fd and
 * the bound port in *port_r (useful with port 0), or -1 with *errstr.
 */
int net_listen(const char *addr, bool reuseport, int backlog, int *port_r, const char **errstr);

#endif
