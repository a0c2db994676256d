/* js_bare.c — the ceiling of JetStream ingest (issue 4, item 1): a bare pull
 * consumer that fetches and acks, nothing else.
 *
 * It reads the stream vigil reads (--stream, default VIGIL_EVENTS) through
 * a durable consumer of its own (--consumer, default bench_bare; recreated
 * at the start so every run reads the whole stream) configured as vigil's
 * (api/jetstream.c position_consumer: explicit acks, AckWait 5 min,
 * MaxAckPending 100,000, deliver all, filter --subject), fetches batches of
 * --batch (default 1000, vigil's fetch_batch) with natsSubscription_Fetch
 * and acks each message with natsMsg_Ack — what vigil does around its
 * engine. It stops once it acked as many messages as the stream held at the
 * start (or --count), flushes (the server has every ack), and prints RESULT
 * lines: messages, seconds from the first fetch to the flushed last ack, the
 * rate, and the consumer's ack floor read back from the server. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <nats/nats.h>
#include "benchutil.h"

static void usage(void) {
    fprintf(stderr, "usage: bench_js_bare --nats URL [--stream S] [--consumer C] [--subject S] [--batch N] [--count N]\n");
}

int main(int argc, char **argv) {
    const char *url = NULL, *stream = "VIGIL_EVENTS", *consumer = "bench_bare", *subject = "vigil.events.>";
    long long batch = 1000, count = -1;
    for (int i = 1; i < argc; i++) {
        if (i + 1 >= argc) {
            usage();
            return 2;
        }
        const char *a = argv[i], *v = argv[++i];
        if (strcmp(a, "--nats") == 0) url = v;
        else if (strcmp(a, "--stream") == 0) stream = v;
        else if (strcmp(a, "--consumer") == 0) consumer = v;
        else if (strcmp(a, "--subject") == 0) subject = v;
        else if (strcmp(a, "--batch") == 0) batch = bu_count(v);
        else if (strcmp(a, "--count") == 0) count = bu_count(v);
        else {
            usage();
            return 2;
        }
    }
    if (!url || batch <= 0) {
        usage();
        return 2;
    }
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    jsErrCode jerr = 0;
    natsStatus s = natsConnection_ConnectTo(&nc, url);
    if (s == NATS_OK) s = natsConnection_JetStream(&js, nc, NULL);
    if (s != NATS_OK) {
        fprintf(stderr, "js_bare: cannot connect to %s: %s\n", url, natsStatus_GetText(s));
        return 1;
    }
    jsStreamInfo *si = NULL;
    if ((s = js_GetStreamInfo(&si, js, stream, NULL, &jerr)) != NATS_OK) {
        fprintf(stderr, "js_bare: stream %s: %s\n", stream, natsStatus_GetText(s));
        return 1;
    }
    long long total = count >= 0 ? count : (long long)si->State.Msgs;
    jsStreamInfo_Destroy(si);
    js_DeleteConsumer(js, stream, consumer, NULL, &jerr);   /* absent is fine */
    jsConsumerConfig cc;
    jsConsumerConfig_Init(&cc);
    cc.Durable = consumer;
    cc.AckPolicy = js_AckExplicit;
    cc.AckWait = 300LL * 1000000000LL;
    cc.MaxDeliver = -1;
    cc.MaxAckPending = 100000;
    cc.FilterSubject = subject;
    cc.DeliverPolicy = js_DeliverAll;
    jsConsumerInfo *ci = NULL;
    if ((s = js_AddConsumer(&ci, js, stream, &cc, NULL, &jerr)) != NATS_OK) {
        fprintf(stderr, "js_bare: cannot create consumer %s: %s (%d)\n", consumer, natsStatus_GetText(s), (int)jerr);
        return 1;
    }
    jsConsumerInfo_Destroy(ci);
    jsSubOptions so;
    jsSubOptions_Init(&so);
    so.Stream = stream;
    so.Consumer = consumer;
    natsSubscription *sub = NULL;
    if ((s = js_PullSubscribe(&sub, js, subject, consumer, NULL, &so, &jerr)) != NATS_OK) {
        fprintf(stderr, "js_bare: cannot bind to %s: %s\n", consumer, natsStatus_GetText(s));
        return 1;
    }
    long long acked = 0, fetches = 0, timeouts = 0;
    double t0 = bu_mono();
    while (acked < total) {
        natsMsgList list = {0};
        s = natsSubscription_Fetch(&list, sub, (int)batch, 500, &jerr);
        if (s == NATS_TIMEOUT) {
            if (++timeouts > 20) {
                fprintf(stderr, "js_bare: no message for 10 s at %lld of %lld\n", acked, total);
                break;
            }
            continue;
        }
        if (s != NATS_OK) {
            fprintf(stderr, "js_bare: fetch: %s\n", natsStatus_GetText(s));
            break;
        }
        timeouts = 0;
        fetches++;
        for (int i = 0; i < list.Count; i++)
            if (natsMsg_Ack(list.Msgs[i], NULL) == NATS_OK) acked++;
        natsMsgList_Destroy(&list);
    }
    natsConnection_FlushTimeout(nc, 10000);
    double secs = bu_mono() - t0;
    unsigned long long floor = 0;
    if (js_GetConsumerInfo(&ci, js, stream, consumer, NULL, &jerr) == NATS_OK) {
        floor = ci->AckFloor.Consumer;
        jsConsumerInfo_Destroy(ci);
    }
    printf("RESULT messages %lld\nRESULT fetches %lld\nRESULT secs %.4f\nRESULT eps %.0f\nRESULT ack_floor %llu\n", acked,
           fetches, secs, secs > 0 ? (double)acked / secs : 0, floor);
    fflush(stdout);
    natsSubscription_Destroy(sub);
    js_DeleteConsumer(js, stream, consumer, NULL, &jerr);
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    return acked >= total ? 0 : 1;
}
