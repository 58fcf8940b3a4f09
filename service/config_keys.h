/* config_keys.h - the configuration's key table as config.c and
 * config_file.c share it; nothing else includes this (config.h is the
 * module's interface).
 *
 * Invariant: cfg_keys[] has exactly one row per member of struct cfg, and
 * every row's default text parses under its own rules.
 * Ownership: the table is static and read-only.
 */
#ifndef BNN_CONFIG_KEYS_H
#define BNN_CONFIG_KEYS_H

#include <stddef.h>

#include "config.h"

enum cfg_type {
    CFG_STR,    /* char[size]; printable characters only */
    CFG_UINT,   /* unsigned in [min, max] */
    CFG_SIZE,   /* size_t in [min, max], suffixes B, KiB, MiB, GiB, kB, MB, GB */
    CFG_DOUBLE, /* finite double; open interval (min, max) when open is set */
    CFG_MODEL,  /* double in [min, max], or "model" (stored as NAN): the model's own value */
    CFG_BOOL,   /* true/false, 1/0, yes/no, on/off */
    CFG_CHOICE  /* char[size] holding one of choices[] */
};

struct cfg_key {
    const char *name;
    enum cfg_type type;
    size_t offset, size;
    double min, max;
    int open; /* CFG_DOUBLE: bounds are exclusive */
    const char *const *choices;
    const char *def;
    const char *help;
};

extern const struct cfg_key cfg_keys[];
extern const size_t cfg_n_keys;

/* The row of a key spelled with '_' or '-' (name need not be
 * NUL-terminated); NULL when there is none. */
const struct cfg_key *cfg_find_key(const char *name, size_t len);

/* Parses value under k's rules into c; 0, or -1 with err naming the key,
 * the accepted range and the value (err may be NULL). */
int cfg_set_key(struct cfg *c, const struct cfg_key *k, const char *value, char err[CFG_ERR_LEN]);

/* printf into err (NULL-safe). */
void cfg_set_err(char err[CFG_ERR_LEN], const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
