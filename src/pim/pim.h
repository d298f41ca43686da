/*
 * pim.h: the conversions of contacts, calendars and tasks as the command
 * layer takes them (mailbox/commands.h, struct mbx_pim_codec): a vCard
 * (vcard.h, contact.h), an iCalendar event (event.h) or task (task.h) to
 * and from its EAS class, by the class of the folder.
 */
#ifndef ABQ_PIM_PIM_H
#define ABQ_PIM_PIM_H

#include "mailbox/commands.h"

extern const struct mbx_pim_codec pim_codec;

#endif
