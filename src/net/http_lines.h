/*
 * http_lines.h: the common lines of an HTTP/1.1 header block handed to
 * libhttp-parser's callbacks without the parser's byte-at-a-time walk.
 *
 * Both HTTP parsers of abqd (the phone's requests, http_server.c; the
 * upstream's responses, proxy/upstream.c) run Debian's libhttp-parser. It
 * walks every byte of a header block through its state machine: about half
 * of abqd's own instructions per proxied request. These functions take the
 * lines whose outcome is known without that walk and leave everything else to
 * the parser, so that what the callbacks receive, what the parser decides
 * about the message (its framing, keep-alive, upgrade) and every error are
 * the same as if the parser had read every byte (fuzz/fuzz_lines.c checks
 * this against the parser on any input).
 */
#ifndef ABQ_NET_HTTP_LINES_H
#define ABQ_NET_HTTP_LINES_H

#include <http_parser.h>
#include <stddef.h>

/*
 * A whole plain header line at once, for a caller that can take it cheaper
 * than as on_header_field then on_header_value (one capacity check, no
 * second call): it must do exactly what those two would. Returns 0, or
 * HPE_CB_header_field or HPE_CB_header_value for the one that would have
 * failed.
 */
typedef int (*http_line_cb)(http_parser *p, const char *name, size_t nlen, const char *value,
                            size_t vlen);

/*
 * Take the header lines at the start of buf[0..n) while they are plain:
 *   name ":" [SP] value CRLF
 * with a name of RFC 9110 token bytes, a value that starts with a visible
 * byte and has only visible bytes, SP, HTAB and bytes >= 0x80, and a next
 * line in buf that does not start with SP or HTAB (no folding). A plain line
 * whose name is one the parser interprets (Connection, Proxy-Connection,
 * Content-Length, Transfer-Encoding, Upgrade, in any case) is run through
 * http_parser_execute alone, but for "Connection: keep-alive" in HTTP/1.1,
 * whose only effect in the parser (F_CONNECTION_KEEP_ALIVE) is read for
 * HTTP/1.0 alone; any other plain line goes straight to on_line, if not
 * NULL, else to s->on_header_field and s->on_header_value, with the spans
 * the parser would give them. The first line that is not plain (the empty line that ends the
 * block among them) stops the walk.
 *
 * p must stand right after a start line or a whole header line of the
 * message's header block (never in trailers). Returns the bytes of buf taken;
 * the caller runs the parser over the rest. When the parser refuses a line,
 * HTTP_PARSER_ERRNO(p) says so and the return counts the bytes it took, as
 * its own return would; when a callback fails, HTTP_PARSER_ERRNO(p) is
 * HPE_CB_header_field or HPE_CB_header_value and the return stops before the
 * line (on_line's own code).
 */
size_t http_lines(http_parser *p, const http_parser_settings *s, http_line_cb on_line,
                  const char *buf, size_t n);

/*
 * The start of a response, "HTTP/1.x NNN reason" CRLF with nothing of it
 * parsed yet, run through the parser as one line. Returns its length (the
 * parser then stands at the header block, for http_lines), or 0 when buf does
 * not start with such a whole line and nothing was parsed. When the parser
 * refuses the line, HTTP_PARSER_ERRNO(p) says so.
 */
size_t http_status_line(http_parser *p, const http_parser_settings *s, const char *buf, size_t n);

/*
 * The lengths of the longest prefixes of s[0..n) made of RFC 9110 token bytes
 * (a field name) and of field-value bytes (HTAB, SP, visible ASCII and bytes
 * >= 0x80; lib/util.h field_value_ok's set).
 */
size_t http_token_span(const char *s, size_t n);
size_t http_value_span(const char *s, size_t n);

/*
 * The length of the longest prefix of s[0..n) made of the request-target
 * bytes the phone's request line is taken with (http_server.c conn_line):
 * RFC 3986's unreserved and sub-delims, ':', '@', '/', '?' and '%'. Every
 * one is a URL byte to libhttp-parser, '?' starts or continues the query and
 * none starts a fragment.
 */
size_t http_target_span(const char *s, size_t n);

#endif
