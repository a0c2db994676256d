/* alloc.h — jemalloc's settings for the programs that link it (vigil and
 * bench_synth, which measures vigil's memory): a main file includes this
 * once. Freed pages go back to the system after ~1 s (jemalloc's default is
 * 10 s, which showed as ~30 B more RSS per idle key; issue 16), with the
 * same CPU in the replay. MALLOC_CONF in the environment still overrides. */
#ifndef VIGIL_CLI_ALLOC_H
#define VIGIL_CLI_ALLOC_H
#if defined(VIGIL_JEMALLOC)
const char *malloc_conf = "dirty_decay_ms:1000,muzzy_decay_ms:0";
#endif
#endif
