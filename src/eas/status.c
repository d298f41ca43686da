/*
 * status.c: a command's own failure answer, built with the WBXML codec.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eas/status.h"
#include "eas/wbxml.h"

/*
 * The root element of each command whose response may consist of a single
 * Status (MS-ASCMD). Commands absent here (GetAttachment, MoveItems,
 * MeetingResponse, the 2.5 collection commands) have no root Status: 403.
 */
static const struct {
	enum eas_cmd cmd;
	const char *root;
} roots[] = {
    {EAS_CMD_SYNC, "AirSync:Sync"},
    {EAS_CMD_FOLDERSYNC, "FolderHierarchy:FolderSync"},
    {EAS_CMD_FOLDERCREATE, "FolderHierarchy:FolderCreate"},
    {EAS_CMD_FOLDERDELETE, "FolderHierarchy:FolderDelete"},
    {EAS_CMD_FOLDERUPDATE, "FolderHierarchy:FolderUpdate"},
    {EAS_CMD_GETITEMESTIMATE, "GetItemEstimate:GetItemEstimate"},
    {EAS_CMD_PING, "Ping:Ping"},
    {EAS_CMD_PROVISION, "Provision:Provision"},
    {EAS_CMD_SETTINGS, "Settings:Settings"},
    {EAS_CMD_ITEMOPERATIONS, "ItemOperations:ItemOperations"},
    {EAS_CMD_SEARCH, "Search:Search"},
    {EAS_CMD_RESOLVERECIPIENTS, "ResolveRecipients:ResolveRecipients"},
    {EAS_CMD_VALIDATECERT, "ValidateCert:ValidateCert"},
    {EAS_CMD_SENDMAIL, "ComposeMail:SendMail"},
    {EAS_CMD_SMARTFORWARD, "ComposeMail:SmartForward"},
    {EAS_CMD_SMARTREPLY, "ComposeMail:SmartReply"},
    {EAS_CMD_FIND, "Find:Find"},
};

const char *
eas_status_root(enum eas_cmd cmd)
{
	for (size_t i = 0; i < sizeof(roots) / sizeof(roots[0]); i++) {
		if (roots[i].cmd == cmd)
			return roots[i].root;
	}
	return NULL;
}

int
eas_version_number(const char *version)
{
	int major = 0, minor = 0;
	char extra;
	if (version == NULL || sscanf(version, "%d.%d%c", &major, &minor, &extra) != 2 ||
	    major < 1 || major > 99 || minor < 0 || minor > 9)
		return 0;
	return major * 10 + minor;
}

/*
 * Build the root element with one Status child on the root's page. Returns 0
 * and the encoded bytes, or -1.
 */
static int
build(const char *root, int status, uint8_t **body_r, size_t *len_r)
{
	struct wbxml_doc *doc = wbxml_doc_new();
	char text[16];
	int rv = -1;

	snprintf(text, sizeof(text), "%d", status);
	struct wbxml_node *r = wbxml_addn_root(doc, root);
	if (wbxml_addn_text(r, "Status", text) != NULL &&
	    wbxml_encode(doc, body_r, len_r, NULL) == WBXML_OK)
		rv = 0;
	wbxml_doc_free(&doc);
	return rv;
}

int
eas_status_response(enum eas_cmd cmd, const char *version, int status, int *http_status,
                    uint8_t **body_r, size_t *len_r)
{
	const char *root = eas_status_root(cmd);
	int v = eas_version_number(version);

	*body_r = NULL;
	*len_r = 0;
	*http_status = 403;
	/* Find arrived with 16.1; ComposeMail's WBXML forms with 14.0. */
	if (root == NULL || v < 140 || (cmd == EAS_CMD_FIND && v < 161))
		return 0;
	if (build(root, status, body_r, len_r) < 0)
		return -1;
	*http_status = 200;
	return 0;
}
