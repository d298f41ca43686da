/*
 * devinfo.h: the device facts a phone reports in a Settings or Provision
 * request (settings:DeviceInformation/Set, MS-ASCMD 2.2.3.47).
 */
#ifndef ABQ_EAS_DEVINFO_H
#define ABQ_EAS_DEVINFO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Each field NULL when not reported; strings owned by the struct. */
struct eas_devinfo {
	char *model;
	char *imei;
	char *friendly_name;
	char *os;
	char *os_language;
	char *phone_number;
	char *user_agent;
	char *mobile_operator;
};

/*
 * Read the DeviceInformation/Set of a Settings or Provision request body.
 * Returns 1 when one was found (fields filled), 0 when the body has none, -1
 * when the body is not WBXML the codec accepts (*errmsg_r, a new string).
 */
int eas_devinfo_parse(const uint8_t *body, size_t len, struct eas_devinfo *out, char **errmsg_r);
void eas_devinfo_clear(struct eas_devinfo *d);

#endif
