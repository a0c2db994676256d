/* gen.h — `vigil gen`: a synthetic card-transaction feed with fraud.
 *
 * A source for demos, the README quick start and benchmarks on a machine
 * without the real card data (../shared/data). It follows the simulator of
 * the Fraud Detection Handbook (Le Borgne et al., ULB 2022, chapter 3), the
 * generator of that real data set:
 *
 * - customers (default 5000) at uniform points of a 100×100 grid, each with a
 *   mean amount ~ U(5, 100), std = mean / 2, and a daily rate ~ U(0, 4);
 * - terminals (default 10000) at uniform points; a customer uses the
 *   terminals within distance 5 of it, uniformly;
 * - every simulated day each customer makes Poisson(rate) transactions at
 *   times ~ N(noon, 20000 s) (those falling outside the day are dropped) with
 *   amounts ~ N(mean, std) (a negative draw is replaced by U(0, 2·mean)),
 *   rounded to cents;
 * - fraud, as the handbook's three scenarios, later ones overriding labels:
 *   1. any amount > 220 is fraud;
 *   2. each day 2 terminals are drawn; their transactions of that day and
 *      the next 27 (28 days) are fraud;
 *   3. each day 3 customers are drawn; during 14 days each of their
 *      transactions is, with probability 1/3, multiplied by 5 and fraud (the
 *      handbook samples exactly a third of them after the fact; a streaming
 *      generator cannot, so it draws per transaction).
 * - a fraud report (chargeback) for every fraudulent transaction exactly 7
 *   days after it, as in the real data.
 *
 * Events come out as JSON lines in non-decreasing event time (a transaction
 * before a report of the same second), transaction ids increasing with time:
 *
 *   {"type":"tx","transaction_id":"17","tx_datetime":"2018-04-01T00:09:29Z",
 *    "customer_id":4128,"terminal_id":8737,"tx_amount":64.49,"tx_fraud":0,
 *    "tx_fraud_scenario":0}
 *   {"type":"report","report_id":"r17","report_datetime":"2018-04-08T00:09:29Z",
 *    "reported_transaction_id":"17","customer_id":4128,"terminal_id":8737}
 *
 * tx_fraud and tx_fraud_scenario are ground-truth labels for scoring
 * (`vigil replay --label-field tx_fraud --segment-field tx_fraud_scenario`);
 * a rule must never use them. Quick start:
 *   vigil gen --count 500000 > events.ndjson
 *   vigil replay --rules rules/fraud --input events.ndjson \
 *     --time-field tx_datetime,report_datetime \
 *     --id-field transaction_id,report_id --label-field tx_fraud
 *
 * The stream is a pure function of the options (seed included) on a given
 * build; libm differences between platforms may change rare rounding. */
#ifndef VIGIL_GEN_H
#define VIGIL_GEN_H

#include <stddef.h>
#include <stdint.h>

/* A buffer of this size always holds one line of vigil_gen_next. */
#define VIGIL_GEN_LINE_MAX 320

/* Zero-initialised options give the defaults. */
typedef struct vigil_gen_opts {
    uint64_t seed;       /* the stream is a function of the seed */
    int customers;       /* 0: 5000; at most 1,000,000 */
    int terminals;       /* 0: 10000; at most 1,000,000 */
    int64_t start;       /* event time of day 0, seconds since the epoch;
                            0: 2018-04-01T00:00:00Z. Every event is at or
                            after it (the first ones some hours later). */
    uint64_t first_id;   /* transaction id of the first transaction (then
                            +1 each); 0 by default. A stream continued after
                            an earlier one (deploy/quickstart.sh) takes ids
                            the earlier one never used, so the JetStream
                            duplicate window and alert ids see new events. */
    uint64_t count;      /* events (tx and reports) to produce; 0: endless */
    int no_reports;      /* 1: transactions only */
    int no_labels;       /* 1: leave out tx_fraud and tx_fraud_scenario */
} vigil_gen_opts;

typedef enum vigil_gen_kind {
    VIGIL_GEN_TX = 1,
    VIGIL_GEN_REPORT = 2
} vigil_gen_kind;

/* One event, before formatting. */
typedef struct vigil_gen_event {
    vigil_gen_kind kind;
    int64_t time;              /* event time, seconds since the epoch */
    uint64_t transaction_id;   /* tx: its id; report: the reported transaction */
    int customer_id;
    int terminal_id;
    int64_t amount_cents;      /* tx: the amount in cents; report: that of the reported tx */
    int fraud;                 /* tx label 0/1 (reports: 1) */
    int scenario;              /* 0 genuine, 1..3 (reports: the reported tx's scenario) */
} vigil_gen_event;

typedef struct vigil_gen vigil_gen;

/* A new generator (opts may be NULL: defaults). Returns NULL when out of
 * memory or when an option is out of range. The caller owns it: release it
 * with vigil_gen_destroy. Setup takes O(customers + terminals). */
vigil_gen *vigil_gen_create(const vigil_gen_opts *opts);

/* Accepts NULL. */
void vigil_gen_destroy(vigil_gen *g);

/* The next event into *ev. Returns 1, or 0 when opts.count events have been
 * produced (and every later call), or -1 if the generator cannot go on (out
 * of memory). */
int vigil_gen_next_event(vigil_gen *g, vigil_gen_event *ev);

/* The next event as one JSON line ending in '\n', NUL-terminated, in buf of
 * size n (VIGIL_GEN_LINE_MAX is always enough). Returns the line's length
 * (without the NUL), 0 when opts.count events have been produced, -1 on
 * error or when n is too small (the event is then lost: use
 * VIGIL_GEN_LINE_MAX). */
int vigil_gen_next(vigil_gen *g, char *buf, size_t n);

/* Format an event as vigil_gen_next does; labels = 0 leaves out the labels.
 * Returns the length or -1 if n is too small. */
int vigil_gen_format(const vigil_gen_event *ev, int labels, char *buf, size_t n);

/* Events produced so far. */
uint64_t vigil_gen_produced(const vigil_gen *g);

/* A start time as --start takes it, into *seconds (since the epoch): an RFC
 * 3339 date-time ("2018-04-03T10:00:00Z", "…+02:00", a fraction ignored), a
 * bare date ("2018-04-03", midnight UTC), or milliseconds since the epoch
 * (digits only, e.g. a watermark: "1522749600000"), rounded up to a whole
 * second, so that no generated event is before it. Returns 0, or -1
 * when s is none of these (*seconds unchanged). */
int vigil_gen_parse_start(const char *s, int64_t *seconds);

/* `vigil gen [--count N] [--seed S] [--customers N] [--terminals N]
 *  [--rate EV_PER_S] [--speedup F] [--start TIME] [--first-id N]
 *  [--no-reports] [--no-labels]`: NDJSON on stdout. --rate paces output to N events per
 * wall-clock second; --speedup F paces it so that event time runs F times
 * faster than the wall clock (both 0 = as fast as possible; with both, the
 * slower wins). argv[0] is the command name ("gen"). Returns the process
 * exit code: 0 (also when the reader closes the pipe), 1 on an output error,
 * 2 on a usage error. */
int vigil_cmd_gen(int argc, char **argv);

#endif
