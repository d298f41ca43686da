/*
 * listen.c: listening sockets from the spellings the config file uses.
 *
 * Only numeric hosts are accepted ("127.0.0.1:8080", "[::1]:8443", "*:443");
 * IPv6 sockets are IPV6_V6ONLY so that one v4 and one v6 listener on the
 * same port coexist. The socket is non-blocking and close-on-exec; the accept
 * loop itself lives in http_server.c.
 */
#include "net/net.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <string.h>
#include <unistd.h>

#include "lib/util.h"

/* Split "host:port" / "[v6]:port" into a sockaddr. */
static int
parse_listen_addr(const char *s, struct sockaddr_storage *ss, socklen_t *len, const char **errstr)
{
	char host[INET6_ADDRSTRLEN];
	const char *port_s, *h, *he;
	long long port;

	if (s[0] == '[') {
		h = s + 1;
		he = strchr(h, ']');
		if (he == NULL || he[1] != ':') {
			*errstr = "listen address: expected [v6]:port";
			return -1;
		}
		port_s = he + 2;
	} else {
		h = s;
		he = strrchr(s, ':');
		if (he == NULL) {
			*errstr = "listen address: expected host:port";
			return -1;
		}
		port_s = he + 1;
	}
	if (parse_int(port_s, 0, 65535, &port, errstr) == -1) {
		*errstr = "listen address: bad port";
		return -1;
	}
	if ((size_t)(he - h) >= sizeof(host)) {
		*errstr = "listen address: bad host";
		return -1;
	}
	memcpy(host, h, (size_t)(he - h));
	host[he - h] = '\0';
	memset(ss, 0, sizeof(*ss));
	if (host[0] == '\0' || strcmp(host, "*") == 0) {
		struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
		s4->sin_family = AF_INET;
		s4->sin_addr.s_addr = htonl(INADDR_ANY);
		s4->sin_port = htons((uint16_t)port);
		*len = sizeof(*s4);
		return 0;
	}
	if (s[0] != '[') {
		struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
		if (inet_pton(AF_INET, host, &s4->sin_addr) == 1) {
			s4->sin_family = AF_INET;
			s4->sin_port = htons((uint16_t)port);
			*len = sizeof(*s4);
			return 0;
		}
	} else {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
		if (inet_pton(AF_INET6, host, &s6->sin6_addr) == 1) {
			s6->sin6_family = AF_INET6;
			s6->sin6_port = htons((uint16_t)port);
			*len = sizeof(*s6);
			return 0;
		}
	}
	*errstr = "listen address: host must be a numeric address";
	return -1;
}

/* Create, configure, bind and listen; report the bound port. */
int
net_listen(const char *addr, bool reuseport, int backlog, int *port_r, const char **errstr)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int fd, on = 1;

	if (parse_listen_addr(addr, &ss, &len, errstr) == -1)
		return -1;
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1) {
		*errstr = "socket() failed";
		return -1;
	}
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) == -1)
		goto fail_opt;
	if (reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof(on)) == -1)
		goto fail_opt;
	if (ss.ss_family == AF_INET6 &&
	    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof(on)) == -1)
		goto fail_opt;
	if (bind(fd, (struct sockaddr *)&ss, len) == -1) {
		*errstr = errno == EADDRINUSE ? "address already in use" : "bind() failed";
		goto fail;
	}
	if (listen(fd, backlog) == -1) {
		*errstr = "listen() failed";
		goto fail;
	}
	len = sizeof(ss);
	if (getsockname(fd, (struct sockaddr *)&ss, &len) == -1) {
		*errstr = "getsockname() failed";
		goto fail;
	}
	*port_r = ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
	                                        : ((struct sockaddr_in6 *)&ss)->sin6_port);
	return fd;
fail_opt:
	*errstr = "setsockopt() failed";
fail:
	close(fd);
	return -1;
}
