/*
 * mailbox_tool.c: write sample answers of the quarantine mailbox to files.
 *
 * usage: mailbox-tool OUTDIR
 *
 * Plays a phone's first session (Provision, Settings, FolderSync, Sync 0,
 * Sync with GetChanges in plain and HTML, GetItemEstimate, ItemOperations,
 * Ping, SendMail, the start-over answers, and the answers of the
 * command-layer review: Sync with a MIME body, a refused Add, Wait out of
 * range, Settings Oof and RightsManagementInformation, MoveItems,
 * EmptyFolderContents) at every protocol version and
 * writes each answer as OUTDIR/<version>-<name>.wbxml, so that
 * mailbox_oracle.sh can check them with libwbxml's wbxml2xml. The sync state
 * lives in memory (one blob per collection).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eas/wbxml.h"
#include "lib/util.h"
#include "mailbox/commands.h"

/* The in-memory state: a handful of (collection, blob) pairs. */
struct mem {
	char coll[16][80];
	char *val[16];
	size_t n;
};

/* accessor get */
static int
mem_get(void *arg, const char *a, const char *d, const char *c, char **blob_r, size_t *len_r)
{
	struct mem *m = arg;
	for (size_t i = 0; i < m->n; i++) {
		if (strcmp(m->coll[i], c) == 0) {
			*blob_r = xstrdup(m->val[i]);
			*len_r = strlen(m->val[i]);
			return 1;
		}
	}
	return 0;
}

/* accessor put */
static int
mem_put(void *arg, const char *a, const char *d, const char *c, const char *blob, size_t len)
{
	struct mem *m = arg;
	size_t i;
	for (i = 0; i < m->n && strcmp(m->coll[i], c) != 0; i++)
		;
	if (i == m->n) {
		if (m->n == 16)
			return -1;
		snprintf(m->coll[m->n++], 80, "%s", c);
	} else {
		free(m->val[i]);
	}
	m->val[i] = xstrndup(blob, len);
	return 0;
}

/* accessor del */
static int
mem_del(void *arg, const char *a, const char *d, const char *c)
{
	struct mem *m = arg;
	for (size_t i = 0; i < m->n;) {
		if (c == NULL || strcmp(m->coll[i], c) == 0) {
			free(m->val[i]);
			m->n--;
			m->val[i] = m->val[m->n];
			memcpy(m->coll[i], m->coll[m->n], 80);
		} else {
			i++;
		}
	}
	return 0;
}

static const char *outdir;
static const char *version;
static struct mem mem;
static struct mbx_backend *mb;
static int failures;

/* Write out's body to OUTDIR/<version>-<name>.wbxml. */
static void
save(const char *name, const struct mbx_serve_out *out)
{
	char path[4096];
	FILE *fp;

	if (out->http_status != 200 || out->body == NULL) {
		fprintf(stderr, "mailbox-tool: %s %s: HTTP %d\n", version, name, out->http_status);
		failures++;
		return;
	}
	snprintf(path, sizeof(path), "%s/%s-%s.wbxml", outdir, version, name);
	fp = fopen(path, "wb");
	if (fp == NULL || fwrite(out->body, 1, out->body_len, fp) != out->body_len) {
		perror(path);
		failures++;
	}
	if (fp)
		fclose(fp);
}

/* Serve a request document and save the answer; returns the decoded answer. */
static struct wbxml_doc *
run(const char *name, enum eas_cmd cmd, struct wbxml_doc *req)
{
	uint8_t *body = NULL;
	size_t len = 0;
	struct mbx_serve_out out;
	struct wbxml_doc *resp = NULL;

	if (req && wbxml_encode(req, &body, &len, NULL) != WBXML_OK)
		fatalx("cannot encode the %s request", name);
	wbxml_doc_free(&req);
	struct mbx_serve_in in = {
	    .cmd = cmd,
	    .version = version,
	    .body = body,
	    .body_len = len,
	    .account = "alice@example.com",
	    .device_id = "ORACLEDEV",
	    .backend = mb,
	    .state = {&mem, mem_get, mem_put, mem_del},
	    .now = 1700000000,
	};
	if (mbx_serve(&in, &out) < 0)
		fatalx("mbx_serve failed for %s", name);
	save(name, &out);
	if (out.body)
		wbxml_decode(out.body, out.body_len, NULL, &resp, NULL);
	mbx_serve_out_clear(&out);
	free(body);
	return resp;
}

/* A Sync request of the Inbox (type "4": MIME, with MIMESupport 2). */
static struct wbxml_doc *
sync_req(const char *key, const char *type)
{
	struct wbxml_doc *d = wbxml_doc_new();
	struct wbxml_node *c =
	    wbxml_addn(wbxml_addn(wbxml_addn_root(d, "AirSync:Sync"), "Collections"), "Collection");
	wbxml_addn_text(c, "SyncKey", key);
	wbxml_addn_text(c, "CollectionId", MBX_Q_INBOX_ID);
	if (strcmp(key, "0") != 0) {
		wbxml_addn(c, "GetChanges");
		struct wbxml_node *o = wbxml_addn(c, "Options");
		if (strcmp(type, "4") == 0)
			wbxml_addn_text(o, "MIMESupport", "2");
		wbxml_addn_text(wbxml_addn(o, "AirSyncBase:BodyPreference"), "Type", type);
	}
	return d;
}

/* One session at one version. */
static void
session(void)
{
	struct notice_facts facts = {.account = "alice@example.com",
	                             .device_id = "ORACLEDEV",
	                             .model = "iPhone15,3",
	                             .device_type = "iPhone",
	                             .eas_version = version,
	                             .state = "Quarantined"};
	struct wbxml_doc *d, *r;
	char key[80];
	struct mbx_serve_out out;

	mb = mbx_quarantine_new(NULL, &facts);
	d = wbxml_doc_new();
	wbxml_addn_text(
	    wbxml_addn(wbxml_addn(wbxml_addn_root(d, "Provision:Provision"), "Policies"), "Policy"),
	    "PolicyType", "MS-EAS-Provisioning-WBXML");
	r = run("provision", EAS_CMD_PROVISION, d);
	wbxml_doc_free(&r);
	d = wbxml_doc_new();
	struct wbxml_node *s = wbxml_addn_root(d, "Settings:Settings");
	wbxml_addn_text(wbxml_addn(wbxml_addn(s, "DeviceInformation"), "Set"), "Model", "X");
	wbxml_addn(wbxml_addn(s, "UserInformation"), "Get");
	r = run("settings", EAS_CMD_SETTINGS, d);
	wbxml_doc_free(&r);
	d = wbxml_doc_new();
	wbxml_addn_text(wbxml_addn_root(d, "FolderHierarchy:FolderSync"), "SyncKey", "0");
	r = run("foldersync", EAS_CMD_FOLDERSYNC, d);
	wbxml_doc_free(&r);
	r = run("sync0", EAS_CMD_SYNC, sync_req("0", "1"));
	snprintf(key, sizeof(key), "%s",
	         wbxml_find_text(wbxml_doc_root(r), "Collections/Collection/SyncKey"));
	wbxml_doc_free(&r);
	d = wbxml_doc_new();
	struct wbxml_node *c = wbxml_addn(
	    wbxml_addn(wbxml_addn_root(d, "GetItemEstimate:GetItemEstimate"), "Collections"),
	    "Collection");
	wbxml_addn_text(c, "AirSync:SyncKey", key);
	wbxml_addn_text(c, "CollectionId", MBX_Q_INBOX_ID);
	r = run("getitemestimate", EAS_CMD_GETITEMESTIMATE, d);
	wbxml_doc_free(&r);
	r = run("sync-plain", EAS_CMD_SYNC, sync_req(key, "1"));
	wbxml_doc_free(&r);
	/* A second session from Sync 0 for the HTML body. */
	r = run("sync0b", EAS_CMD_SYNC, sync_req("0", "1"));
	snprintf(key, sizeof(key), "%s",
	         wbxml_find_text(wbxml_doc_root(r), "Collections/Collection/SyncKey"));
	wbxml_doc_free(&r);
	r = run("sync-html", EAS_CMD_SYNC, sync_req(key, "2"));
	char sid[80];
	snprintf(
	    sid, sizeof(sid), "%s",
	    wbxml_find_text(wbxml_doc_root(r), "Collections/Collection/Commands/Add/ServerId"));
	wbxml_doc_free(&r);
	d = wbxml_doc_new();
	struct wbxml_node *fe =
	    wbxml_addn(wbxml_addn_root(d, "ItemOperations:ItemOperations"), "Fetch");
	wbxml_addn_text(fe, "Store", "Mailbox");
	wbxml_addn_text(fe, "AirSync:CollectionId", MBX_Q_INBOX_ID);
	wbxml_addn_text(fe, "AirSync:ServerId", sid);
	r = run("itemoperations", EAS_CMD_ITEMOPERATIONS, d);
	wbxml_doc_free(&r);
	/* A mailbox Search finding the alert, with its LongId and Range. */
	d = wbxml_doc_new();
	struct wbxml_node *so = wbxml_addn(wbxml_addn_root(d, "Search:Search"), "Store");
	wbxml_addn_text(so, "Name", "Mailbox");
	struct wbxml_node *and = wbxml_addn(wbxml_addn(so, "Query"), "And");
	wbxml_addn_text(and, "AirSync:Class", "Email");
	wbxml_addn_text(and, "AirSync:CollectionId", MBX_Q_INBOX_ID);
	wbxml_addn_text(and, "FreeText", "quarantine");
	wbxml_addn_text(wbxml_addn(so, "Options"), "Range", "0-9");
	r = run("search", EAS_CMD_SEARCH, d);
	wbxml_doc_free(&r);
	d = wbxml_doc_new();
	struct wbxml_node *p = wbxml_addn_root(d, "Ping:Ping");
	wbxml_addn_text(p, "HeartbeatInterval", "480");
	struct wbxml_node *f = wbxml_addn(wbxml_addn(p, "Folders"), "Folder");
	wbxml_addn_text(f, "Id", MBX_Q_INBOX_ID);
	wbxml_addn_text(f, "Class", "Email");
	r = run("ping", EAS_CMD_PING, d);
	wbxml_doc_free(&r);
	if (strcmp(version, "14.0") >= 0) {
		d = wbxml_doc_new();
		wbxml_addn_text(wbxml_addn_root(d, "ComposeMail:SendMail"), "ClientId", "1");
		r = run("sendmail", EAS_CMD_SENDMAIL, d);
		wbxml_doc_free(&r);
	}
	/* A third session from Sync 0 for the MIME body. */
	r = run("sync0c", EAS_CMD_SYNC, sync_req("0", "1"));
	snprintf(key, sizeof(key), "%s",
	         wbxml_find_text(wbxml_doc_root(r), "Collections/Collection/SyncKey"));
	wbxml_doc_free(&r);
	r = run("sync-mime", EAS_CMD_SYNC, sync_req(key, "4"));
	snprintf(key, sizeof(key), "%s",
	         wbxml_find_text(wbxml_doc_root(r), "Collections/Collection/SyncKey"));
	wbxml_doc_free(&r);
	/* A refused Add (a draft), and a Wait out of range. */
	d = sync_req(key, "1");
	struct wbxml_node *a = wbxml_addn(
	    wbxml_addn(wbxml_find(wbxml_doc_root(d), "Collections/Collection"), "Commands"), "Add");
	wbxml_addn_text(a, "ClientId", "draft-1");
	wbxml_addn_text(wbxml_addn(a, "ApplicationData"), "Email:Subject", "draft");
	r = run("sync-add", EAS_CMD_SYNC, d);
	wbxml_doc_free(&r);
	d = sync_req(key, "1");
	wbxml_addn_text(wbxml_doc_root(d), "Wait", "90");
	r = run("sync-limit", EAS_CMD_SYNC, d);
	wbxml_doc_free(&r);
	/* Settings the quarantine refuses, and rights management. */
	d = wbxml_doc_new();
	s = wbxml_addn_root(d, "Settings:Settings");
	wbxml_addn_text(wbxml_addn(wbxml_addn(s, "Oof"), "Get"), "BodyType", "Text");
	wbxml_addn_text(wbxml_addn(wbxml_addn(s, "Oof"), "Set"), "OofState", "1");
	wbxml_addn(wbxml_addn(s, "RightsManagementInformation"), "Get");
	r = run("settings-oof", EAS_CMD_SETTINGS, d);
	wbxml_doc_free(&r);
	/* The alert moved to Deleted Items; Deleted Items emptied. */
	d = wbxml_doc_new();
	struct wbxml_node *m = wbxml_addn(wbxml_addn_root(d, "Move:MoveItems"), "Move");
	wbxml_addn_text(m, "SrcMsgId", sid);
	wbxml_addn_text(m, "SrcFldId", MBX_Q_INBOX_ID);
	wbxml_addn_text(m, "DstFldId", "abq-deleted");
	r = run("moveitems", EAS_CMD_MOVEITEMS, d);
	wbxml_doc_free(&r);
	d = wbxml_doc_new();
	wbxml_addn_text(
	    wbxml_addn(wbxml_addn_root(d, "ItemOperations:ItemOperations"), "EmptyFolderContents"),
	    "AirSync:CollectionId", "abq-deleted");
	r = run("emptyfolder", EAS_CMD_ITEMOPERATIONS, d);
	wbxml_doc_free(&r);
	if (mbx_start_over_body(EAS_CMD_FOLDERSYNC, version, NULL, 0, &out) == 0)
		save("startover-foldersync", &out);
	mbx_serve_out_clear(&out);
	if (mbx_start_over_body(EAS_CMD_PING, version, NULL, 0, &out) == 0)
		save("startover-ping", &out);
	mbx_serve_out_clear(&out);
	mbx_destroy(&mb);
	mem_del(&mem, NULL, NULL, NULL);
}

int
main(int argc, char **argv)
{
	static const char *const versions[] = {"12.0", "12.1", "14.0", "14.1", "16.0", "16.1"};

	if (argc != 2) {
		fprintf(stderr, "usage: mailbox-tool OUTDIR\n");
		return 2;
	}
	outdir = argv[1];
	for (size_t i = 0; i < sizeof(versions) / sizeof(versions[0]); i++) {
		version = versions[i];
		session();
	}
	return failures ? 1 : 0;
}
