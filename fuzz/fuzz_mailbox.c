/*
 * fuzz_mailbox.c: libFuzzer target over the ActiveSync command layer.
 *
 * The quarantine mailbox answers a phone's WBXML bodies itself, so every byte
 * it parses comes from a peer. Each input picks a command (first byte) and a
 * protocol version (second byte); the rest is the request body. Before it, a
 * valid FolderSync 0 and Sync 0 run against the same in-memory sync state, so
 * that the input meets a mailbox with state, as a real phone's second request
 * would. The body is then served a second time (a phone repeating a request
 * whose answer it lost: the replay paths), and an empty Sync follows (the
 * cached-request path). Nothing may crash, leak or read out of bounds, and
 * every answer the layer gives must itself decode.
 *
 * Built with -DABQ_FUZZ_REPLAY (and fuzz/replay.c) it gets a main() that feeds
 * the named directories: every .wbxml file as the body of every command at
 * every version, and every .in file (the fuzzer's own corpus,
 * fuzz/corpus/mailbox) as it is: the replay test of the normal build.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eas/request.h"
#include "eas/wbxml.h"
#include "lib/util.h"
#include "mailbox/commands.h"
#include "mailbox/mailbox.h"
#include "replay.h"

/* A tiny sync-state store: a few blobs keyed by collection. */
struct mem {
	char key[8][128];
	char *val[8];
	size_t len[8];
	size_t n;
};

static int
slot(struct mem *m, const char *c)
{
	for (size_t i = 0; i < m->n; i++)
		if (strcmp(m->key[i], c ? c : "") == 0)
			return (int)i;
	return -1;
}

static int
mem_get(void *arg, const char *a, const char *d, const char *c, char **blob_r, size_t *len_r)
{
	struct mem *m = arg;
	int i = slot(m, c);
	(void)a;
	(void)d;
	if (i < 0)
		return 0;
	*blob_r = xstrndup(m->val[i], m->len[i]);
	*len_r = m->len[i];
	return 1;
}

static int
mem_put(void *arg, const char *a, const char *d, const char *c, const char *blob, size_t len)
{
	struct mem *m = arg;
	int i = slot(m, c);
	(void)a;
	(void)d;
	if (i < 0) {
		if (m->n == 8)
			return -1;
		i = (int)m->n++;
		snprintf(m->key[i], sizeof(m->key[i]), "%s", c ? c : "");
	} else {
		free(m->val[i]);
	}
	m->val[i] = xstrndup(blob, len);
	m->len[i] = len;
	return 0;
}

static int
mem_del(void *arg, const char *a, const char *d, const char *c)
{
	struct mem *m = arg;
	(void)a;
	(void)d;
	for (size_t i = 0; i < m->n;) {
		if (c == NULL || strcmp(m->key[i], c) == 0) {
			free(m->val[i]);
			m->n--;
			memmove(m->key[i], m->key[m->n], sizeof(m->key[i]));
			m->val[i] = m->val[m->n];
			m->len[i] = m->len[m->n];
		} else {
			i++;
		}
	}
	return 0;
}

static const enum eas_cmd cmds[] = {
    EAS_CMD_PROVISION,       EAS_CMD_SETTINGS,  EAS_CMD_FOLDERSYNC,      EAS_CMD_SYNC,
    EAS_CMD_GETITEMESTIMATE, EAS_CMD_PING,      EAS_CMD_ITEMOPERATIONS,  EAS_CMD_SENDMAIL,
    EAS_CMD_SMARTREPLY,      EAS_CMD_MOVEITEMS, EAS_CMD_SEARCH,          EAS_CMD_FOLDERCREATE,
    EAS_CMD_FOLDERDELETE,    EAS_CMD_FIND,      EAS_CMD_MEETINGRESPONSE,
};
static const char *const versions[] = {"12.1", "14.0", "14.1", "16.0", "16.1", NULL};

/* Serve one body; the answer, when there is one, must decode. */
static void
serve(struct mbx_backend *box, struct mem *m, enum eas_cmd cmd, const char *version,
      const uint8_t *body, size_t len)
{
	struct mbx_serve_in in = {
	    .cmd = cmd,
	    .version = version,
	    .body = len ? body : NULL,
	    .body_len = len,
	    .account = "alice",
	    .device_id = "FUZZDEV",
	    .email = "alice@example.test",
	    .backend = box,
	    .state = {.arg = m, .get = mem_get, .put = mem_put, .del = mem_del},
	    .now = 1800000000,
	};
	struct mbx_serve_out out;
	mbx_serve(&in, &out);
	if (out.body_len > 0 && out.content_type != NULL && strstr(out.content_type, "wbxml")) {
		struct wbxml_doc *doc = NULL;
		if (wbxml_decode(out.body, out.body_len, NULL, &doc, NULL) != WBXML_OK)
			abort(); /* the layer produced WBXML it cannot read back */
		wbxml_doc_free(&doc);
	}
	mbx_serve_out_clear(&out);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint8_t foldersync0[] = {0x03, 0x01, 0x6a, 0x00, 0x00, 0x07, 0x56,
	                                      0x52, 0x03, 0x30, 0x00, 0x01, 0x01};
	struct notice_facts facts = {.account = "alice",
	                             .device_id = "FUZZDEV",
	                             .device_type = "iPhone",
	                             .state = "Quarantined"};
	struct mbx_quarantine_config cfg = {0};
	struct mem m = {0};

	if (size < 2)
		return 0;
	struct mbx_backend *box = mbx_quarantine_new(&cfg, &facts);
	const char *version = versions[data[1] % 5];
	serve(box, &m, EAS_CMD_FOLDERSYNC, version, foldersync0, sizeof(foldersync0));
	enum eas_cmd cmd = cmds[data[0] % (sizeof(cmds) / sizeof(cmds[0]))];
	serve(box, &m, cmd, version, data + 2, size - 2);
	serve(box, &m, cmd, version, data + 2, size - 2);
	serve(box, &m, EAS_CMD_SYNC, version, NULL, 0);
	mbx_destroy(&box);
	for (size_t i = 0; i < m.n; i++)
		free(m.val[i]);
	return 0;
}

#ifdef ABQ_FUZZ_REPLAY
static bool
mailbox_wants(const char *name)
{
	return replay_suffix(name, ".in") || replay_suffix(name, ".wbxml");
}

/*
 * A ".in" file is a fuzzer input as it is (command byte, version byte, body);
 * a ".wbxml" file is a body, fed as every command at every version.
 */
static void
mailbox_input(const char *name, const uint8_t *data, size_t size)
{
	if (replay_suffix(name, ".in")) {
		LLVMFuzzerTestOneInput(data, size);
		return;
	}
	uint8_t *buf = xmalloc(size + 2);
	memcpy(buf + 2, data, size);
	for (size_t c = 0; c < sizeof(cmds) / sizeof(cmds[0]); c++) {
		for (int v = 0; v < 5; v++) {
			buf[0] = (uint8_t)c;
			buf[1] = (uint8_t)v;
			LLVMFuzzerTestOneInput(buf, size + 2);
		}
	}
	free(buf);
}

const struct replay_target replay_target = {
    .name = "fuzz_mailbox_replay", .wants = mailbox_wants, .input = mailbox_input};
#endif
