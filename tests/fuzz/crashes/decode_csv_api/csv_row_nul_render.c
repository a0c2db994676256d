/* vigil_event_decode_csv is given an explicit length; a row with an embedded
 * NUL byte decodes, then vigil_event_json (render_csv) and
 * vigil_event_field_text strdup() the line (stopping at the NUL) and split
 * the copy with the full line_len: a heap-buffer-overflow. */
#include <stdio.h>
#include <string.h>
#include "vigil/event.h"
#include "vigil/rules.h"
int main(void) {
    const char *src = "rule{ name='r', key='k', window=sliding('1h'), when=ge(count(), 1) }";
    vigil_ruleset *rs = NULL;
    vigil_error errs[1], err;
    int n = 0;
    if (vigil_rules_load_string("r.lua", src, strlen(src), NULL, &rs, errs, 1, &n) != VIGIL_OK) return 2;
    vigil_csv_header *h = NULL;
    if (vigil_csv_header_create(rs, "ts,k,note", 9, &h, &err) != VIGIL_OK) return 2;
    static const char row[] = "1,a,x\0yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy";
    vigil_event *ev = NULL;
    if (vigil_event_decode_csv(rs, NULL, h, row, sizeof row - 1, NULL, 0, &ev, &err) != VIGIL_OK) return 3;
    size_t len;
    printf("%s\n", vigil_event_json(ev, &len));
    vigil_event_release(ev);
    vigil_csv_header_destroy(h);
    vigil_ruleset_release(rs);
    return 0;
}
