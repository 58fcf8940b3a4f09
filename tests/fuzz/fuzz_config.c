/* fuzz_config.c - libFuzzer harness for the configuration parser. Any text
 * either fails with a message, or parses; a parsed configuration printed
 * with cfg_print must parse back to the identical struct (the round trip
 * --check-config and the shipped file rely on). The same bytes are also
 * fed as environment entries, one per line.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void round_trip(const struct cfg *c)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f)
        return;
    cfg_print(c, f);
    fclose(f);
    struct cfg d;
    char err[CFG_ERR_LEN];
    cfg_defaults(&d);
    if (cfg_parse_text(&d, text, len, "printed", err) != 0 || memcmp(c, &d, sizeof d) != 0)
        abort();
    free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct cfg c;
    char err[CFG_ERR_LEN];
    cfg_defaults(&c);
    err[0] = '\0';
    if (cfg_parse_text(&c, (const char *)data, size, "fuzz.conf", err) == 0) {
        (void)cfg_validate(&c, err);
        round_trip(&c);
    } else if (!err[0]) {
        abort(); /* every failure explains itself */
    }

    /* As environment: each line "BNN_SERVE_KEY=value" (NUL-free lines). */
    if (size > 4096 || memchr(data, '\0', size))
        return 0;
    char *copy = malloc(size + 1);
    char *env[65];
    size_t n = 0;
    if (!copy)
        return 0;
    memcpy(copy, data, size);
    copy[size] = '\0';
    for (char *line = strtok(copy, "\n"); line && n < 64; line = strtok(NULL, "\n"))
        env[n++] = line;
    env[n] = NULL;
    cfg_defaults(&c);
    err[0] = '\0';
    if (cfg_apply_env(&c, env, err) == 0)
        round_trip(&c);
    else if (!err[0])
        abort();
    free(copy);
    return 0;
}
