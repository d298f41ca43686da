/*
 * web_assets.h: the table that src/web/embed.cmake generates (web_assets.c in
 * the build folder); only web.c reads it.
 */
#ifndef ABQ_WEB_ASSETS_H
#define ABQ_WEB_ASSETS_H

#include "web/web.h"

/* Sorted by path, ended by an all-zero entry. */
extern const struct abq_web_asset abq_web_assets[];
extern const size_t abq_web_nassets;

#endif
