/* The C baselines of the ztopo benchmark suite (bench/, `make bench`): what
 * libzmq itself does on this machine, the physical limit the other columns
 * are measured against.
 *
 * Each subcommand is the scenario as a C programmer writes it against
 * libzmq: one process, one context, one thread per role, zmq_msg_t frames
 * passed on without copies, libzmq's own zmq_proxy where a proxy is the
 * natural tool. Round trips use a client with a context of its own, as the
 * Go client does. It prints one JSON line with the field names of the Go
 * harness's Result: expected, msgs, seconds, rate (or p50_us and p99_us),
 * error. The clock runs from creating the first context to terminating the
 * last one.
 *
 * The bench compiles this file at run time with the system compiler:
 *
 *     cc -O2 -o zbench zbench.c $(pkg-config --cflags --libs libzmq) -lpthread
 *     ./zbench pushpull --count 2000000 --size 16 --transport tcp
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zmq.h>

#define RCVTIMEO_MS 30000
#define SUBSCRIBERS 4
#define WORKERS 4

static long count = 0, size = 16, warmup = 1000;
static const char *transport = "tcp";
static const char *connect_ep, *client_bin;
static char tmpdir[64];

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* fail prints the run's result as an error and exits. */
static void fail(const char *what) {
    printf("{\"expected\": %ld, \"msgs\": 0, \"seconds\": 0, \"error\": \"%s: %s\"}\n", count, what,
           zmq_strerror(zmq_errno()));
    fflush(stdout);
    if (tmpdir[0])
        rmdir(tmpdir);
    _exit(1);
}

static void *sock(void *ctx, int type) {
    void *s = zmq_socket(ctx, type);
    int zero = 0, timeo = RCVTIMEO_MS;
    if (!s)
        fail("zmq_socket");
    if (zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof zero) != 0 ||
        zmq_setsockopt(s, ZMQ_RCVTIMEO, &timeo, sizeof timeo) != 0)
        fail("zmq_setsockopt");
    return s;
}

static void setint(void *s, int opt, int v) {
    if (zmq_setsockopt(s, opt, &v, sizeof v) != 0)
        fail("zmq_setsockopt");
}

/* bind binds s to a new endpoint of the run's transport (tcp: a port the
 * kernel picks) and writes the endpoint to connect to into ep. */
static void bind_ep(void *s, const char *name, char *ep, size_t len) {
    static int n;
    n++;
    if (strcmp(transport, "tcp") == 0)
        snprintf(ep, len, "tcp://127.0.0.1:*");
    else if (strcmp(transport, "ipc") == 0)
        snprintf(ep, len, "ipc://%s/%s%d", tmpdir, name, n);
    else
        snprintf(ep, len, "inproc://bench-%s-%d", name, n);
    if (zmq_bind(s, ep) != 0)
        fail("zmq_bind");
    if (zmq_getsockopt(s, ZMQ_LAST_ENDPOINT, ep, &len) != 0)
        fail("zmq_getsockopt");
}

static void *payload(void) {
    char *b = malloc(size ? size : 1);
    for (long i = 0; i < size; i++)
        b[i] = 'a' + i % 26;
    return b;
}

static void print_rate(long expected, long got, double secs) {
    printf("{\"expected\": %ld, \"msgs\": %ld, \"seconds\": %.6f, \"rate\": %.1f", expected, got, secs,
           secs > 0 ? got / secs : 0);
    if (got != expected)
        printf(", \"error\": \"received %ld of %ld\"", got, expected);
    printf("}\n");
}

/* recv_n receives n single-frame messages on s and returns how many came
 * before an error (a timeout: something was lost). */
static long recv_n(void *s, long n) {
    zmq_msg_t m;
    long got = 0;
    zmq_msg_init(&m);
    for (; got < n; got++)
        if (zmq_msg_recv(&m, s, 0) < 0)
            break;
    zmq_msg_close(&m);
    return got;
}

struct sender {
    void *s;
    void *msg;
};

/* send_n sends count copies of the payload; the socket stays open (the
 * main thread closes it after the sink has everything: a linger-0 close
 * right away would drop what is still queued). */
static void *send_n(void *arg) {
    struct sender *a = arg;
    for (long i = 0; i < count; i++)
        if (zmq_send(a->s, a->msg, size, 0) < 0)
            break;
    return NULL;
}

/* forward passes every frame from in to out, multipart messages whole,
 * until the context is shut down. */
static void *forward(void *arg) {
    void **ss = arg;
    void *in = ss[0], *out = ss[1];
    zmq_msg_t m;
    zmq_msg_init(&m);
    for (;;) {
        if (zmq_msg_recv(&m, in, 0) < 0) {
            if (zmq_errno() == EAGAIN)
                continue;
            break;
        }
        if (zmq_msg_send(&m, out, zmq_msg_more(&m) ? ZMQ_SNDMORE : 0) < 0)
            break;
    }
    zmq_msg_close(&m);
    zmq_close(in);
    zmq_close(out);
    return NULL;
}

static void *proxy(void *arg) {
    void **ss = arg;
    zmq_proxy(ss[0], ss[1], NULL);
    zmq_close(ss[0]);
    zmq_close(ss[1]);
    return NULL;
}

/* pushpull: PUSH -> PULL, the sender in a thread, the sink in main. */
static int cmd_pushpull(void) {
    char ep[256];
    double t0 = now();
    void *ctx = zmq_ctx_new();
    void *pull = sock(ctx, ZMQ_PULL);
    bind_ep(pull, "sink", ep, sizeof ep);
    struct sender snd = {sock(ctx, ZMQ_PUSH), payload()};
    if (zmq_connect(snd.s, ep) != 0)
        fail("zmq_connect");
    pthread_t th;
    pthread_create(&th, NULL, send_n, &snd);
    long got = recv_n(pull, count);
    pthread_join(th, NULL);
    zmq_close(snd.s);
    zmq_close(pull);
    zmq_ctx_term(ctx);
    print_rate(count, got, now() - t0);
    return 0;
}

/* stages: ventilator -> workers (forward loops, or zmq_proxy) -> sink. */
static int stages(int workers, int use_proxy) {
    char vent[256], sinkep[256];
    double t0 = now();
    void *ctx = zmq_ctx_new();
    void *sink = sock(ctx, ZMQ_PULL);
    bind_ep(sink, "sink", sinkep, sizeof sinkep);
    struct sender snd = {sock(ctx, ZMQ_PUSH), payload()};
    bind_ep(snd.s, "vent", vent, sizeof vent);
    pthread_t th[WORKERS], sth;
    void *ss[WORKERS][2];
    for (int i = 0; i < workers; i++) {
        ss[i][0] = sock(ctx, ZMQ_PULL);
        ss[i][1] = sock(ctx, ZMQ_PUSH);
        if (zmq_connect(ss[i][0], vent) != 0 || zmq_connect(ss[i][1], sinkep) != 0)
            fail("zmq_connect");
        pthread_create(&th[i], NULL, use_proxy ? proxy : forward, ss[i]);
    }
    pthread_create(&sth, NULL, send_n, &snd);
    long got = recv_n(sink, count);
    pthread_join(sth, NULL);
    zmq_close(snd.s);
    zmq_close(sink);
    zmq_ctx_shutdown(ctx); /* releases the workers with ETERM */
    for (int i = 0; i < workers; i++)
        pthread_join(th[i], NULL);
    zmq_ctx_term(ctx);
    print_rate(count, got, now() - t0);
    return 0;
}

static int cmd_pipeline(void) { return stages(WORKERS, 0); }
static int cmd_forward(void) { return stages(1, 0); }
static int cmd_proxy(void) { return stages(1, 1); }

/* echo answers every request on a REP socket with its own frames. */
static void *echo(void *arg) {
    void *s = arg;
    zmq_msg_t m;
    zmq_msg_init(&m);
    for (;;) {
        if (zmq_msg_recv(&m, s, 0) < 0) {
            if (zmq_errno() == EAGAIN)
                continue;
            break;
        }
        if (zmq_msg_send(&m, s, zmq_msg_more(&m) ? ZMQ_SNDMORE : 0) < 0)
            break;
    }
    zmq_msg_close(&m);
    zmq_close(s);
    return NULL;
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* client times count round trips after warmup untimed ones, with a context
 * of its own, and prints p50 and p99 (nearest rank). */
static void client(const char *ep, double t0, void (*finish)(void)) {
    void *ctx = zmq_ctx_new();
    void *s = sock(ctx, ZMQ_REQ);
    if (zmq_connect(s, ep) != 0)
        fail("zmq_connect");
    char *msg = payload(), *rep = malloc(size + 1);
    double *lat = malloc(sizeof(double) * (count ? count : 1));
    long n = 0;
    const char *err = NULL;
    for (long i = 0; i < warmup + count; i++) {
        double t = now();
        if (zmq_send(s, msg, size, 0) < 0) {
            err = "send";
            break;
        }
        int r = zmq_recv(s, rep, size + 1, 0);
        if (r < 0) {
            err = "round trip timed out";
            break;
        }
        if (i >= warmup)
            lat[n++] = (now() - t) * 1e6;
        if (r != size || memcmp(rep, msg, size) != 0) {
            err = "wrong reply";
            break;
        }
    }
    zmq_close(s);
    zmq_ctx_term(ctx);
    finish();
    qsort(lat, n, sizeof *lat, cmp);
#define RANK(q) (n ? lat[(long)((q) * n + 0.999999) - 1 < 0 ? 0 : (long)((q) * n + 0.999999) - 1] : 0)
    printf("{\"expected\": %ld, \"msgs\": %ld, \"seconds\": %.6f, \"p50_us\": %.3f, \"p99_us\": %.3f", count, n,
           now() - t0, RANK(0.50), RANK(0.99));
    if (err)
        printf(", \"error\": \"%s\"", err);
    printf("}\n");
}

static void *server_ctx;
static pthread_t server_th[2];
static int server_threads;

static void stop_server(void) {
    zmq_ctx_shutdown(server_ctx);
    for (int i = 0; i < server_threads; i++)
        pthread_join(server_th[i], NULL);
    zmq_ctx_term(server_ctx);
}

static void no_server(void) {}

/* client: the round-trip client alone, against a server at --connect. */
static int cmd_client(void) {
    if (!connect_ep) {
        fprintf(stderr, "zbench client: --connect is required\n");
        return 2;
    }
    client(connect_ep, now(), no_server);
    return 0;
}

/* serve times the round trips against a server this process runs: with
 * --client, by that program's `client` subcommand in a process of its own
 * (its result line is this run's), else by a client thread here. */
static void serve(const char *ep, double t0) {
    if (!client_bin) {
        client(ep, t0, stop_server);
        return;
    }
    char c[32], s[32], w[32];
    snprintf(c, sizeof c, "%ld", count);
    snprintf(s, sizeof s, "%ld", size);
    snprintf(w, sizeof w, "%ld", warmup);
    char *argv[] = {(char *)client_bin, "client", "--connect", (char *)ep, "--count", c,
                    "--size",           s,        "--warmup",  w,          NULL};
    extern char **environ;
    pid_t pid;
    fflush(stdout);
    if (posix_spawn(&pid, client_bin, NULL, NULL, argv, environ) != 0)
        fail("posix_spawn");
    int st;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    stop_server();
}

/* reqrep: REQ -> REP echo over tcp. */
static int cmd_reqrep(void) {
    char ep[256];
    double t0 = now();
    server_ctx = zmq_ctx_new();
    void *rep = sock(server_ctx, ZMQ_REP);
    bind_ep(rep, "rep", ep, sizeof ep);
    pthread_create(&server_th[server_threads++], NULL, echo, rep);
    serve(ep, t0);
    return 0;
}

/* broker: REQ -> ROUTER/DEALER zmq_proxy (tcp front, inproc back) -> REP. */
static int cmd_broker(void) {
    char ep[256];
    static void *ss[2];
    double t0 = now();
    server_ctx = zmq_ctx_new();
    ss[0] = sock(server_ctx, ZMQ_ROUTER);
    ss[1] = sock(server_ctx, ZMQ_DEALER);
    bind_ep(ss[0], "front", ep, sizeof ep);
    if (zmq_bind(ss[1], "inproc://bench-backend") != 0)
        fail("zmq_bind");
    void *rep = sock(server_ctx, ZMQ_REP);
    if (zmq_connect(rep, "inproc://bench-backend") != 0)
        fail("zmq_connect");
    pthread_create(&server_th[server_threads++], NULL, proxy, ss);
    pthread_create(&server_th[server_threads++], NULL, echo, rep);
    serve(ep, t0);
    return 0;
}

struct sub {
    void *s;
    long got;
};

static void *subscribe(void *arg) {
    struct sub *a = arg;
    a->got = recv_n(a->s, count);
    zmq_close(a->s);
    return NULL;
}

/* fanout: XPUB -> XSUB/XPUB zmq_proxy -> 4 SUB, tcp. As in the Go and
 * Python runs, each subscriber also subscribes to a topic of its own, and
 * the publisher starts once it has seen all of them; the publishing
 * sockets have no send high-water mark and XPUB_NODROP. */
static int cmd_fanout(void) {
    char front[256], back[256];
    static void *ss[2];
    double t0 = now();
    void *ctx = zmq_ctx_new();
    ss[0] = sock(ctx, ZMQ_XSUB);
    ss[1] = sock(ctx, ZMQ_XPUB);
    setint(ss[1], ZMQ_XPUB_VERBOSE, 1);
    setint(ss[1], ZMQ_XPUB_NODROP, 1);
    setint(ss[1], ZMQ_SNDHWM, 0);
    transport = "tcp";
    bind_ep(ss[0], "front", front, sizeof front);
    bind_ep(ss[1], "back", back, sizeof back);
    pthread_t pth, sth[SUBSCRIBERS];
    pthread_create(&pth, NULL, proxy, ss);
    struct sub subs[SUBSCRIBERS];
    for (int i = 0; i < SUBSCRIBERS; i++) {
        char topic[16];
        snprintf(topic, sizeof topic, "sub-%d", i);
        subs[i].s = sock(ctx, ZMQ_SUB);
        subs[i].got = 0;
        if (zmq_setsockopt(subs[i].s, ZMQ_SUBSCRIBE, "", 0) != 0 ||
            zmq_setsockopt(subs[i].s, ZMQ_SUBSCRIBE, topic, strlen(topic)) != 0)
            fail("zmq_setsockopt");
        if (zmq_connect(subs[i].s, back) != 0)
            fail("zmq_connect");
        pthread_create(&sth[i], NULL, subscribe, &subs[i]);
    }
    void *pub = sock(ctx, ZMQ_XPUB);
    setint(pub, ZMQ_XPUB_VERBOSE, 1);
    setint(pub, ZMQ_XPUB_NODROP, 1);
    setint(pub, ZMQ_SNDHWM, 0);
    if (zmq_connect(pub, front) != 0)
        fail("zmq_connect");
    int seen = 0;
    char buf[32];
    while (seen < SUBSCRIBERS) {
        int r = zmq_recv(pub, buf, sizeof buf, 0);
        if (r < 0)
            fail("waiting for subscribers");
        if (r > 5 && buf[0] == 1 && memcmp(buf + 1, "sub-", 4) == 0)
            seen++;
    }
    char *msg = payload();
    for (long i = 0; i < count; i++)
        if (zmq_send(pub, msg, size, 0) < 0)
            fail("zmq_send");
    long got = 0;
    for (int i = 0; i < SUBSCRIBERS; i++) {
        pthread_join(sth[i], NULL);
        got += subs[i].got;
    }
    zmq_close(pub);
    zmq_ctx_shutdown(ctx);
    pthread_join(pth, NULL);
    zmq_ctx_term(ctx);
    print_rate(count * SUBSCRIBERS, got, now() - t0);
    return 0;
}

static const struct {
    const char *name;
    int (*run)(void);
} commands[] = {
    {"pushpull", cmd_pushpull}, {"pipeline", cmd_pipeline}, {"forward", cmd_forward}, {"proxy", cmd_proxy},
    {"reqrep", cmd_reqrep},     {"broker", cmd_broker},     {"fanout", cmd_fanout},
    {"client", cmd_client},
};

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: zbench SCENARIO --count N [--size B] [--transport T] [--warmup N]\n");
        return 2;
    }
    for (int i = 2; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--count") == 0)
            count = atol(argv[i + 1]);
        else if (strcmp(argv[i], "--size") == 0)
            size = atol(argv[i + 1]);
        else if (strcmp(argv[i], "--transport") == 0)
            transport = argv[i + 1];
        else if (strcmp(argv[i], "--warmup") == 0)
            warmup = atol(argv[i + 1]);
        else if (strcmp(argv[i], "--connect") == 0)
            connect_ep = argv[i + 1];
        else if (strcmp(argv[i], "--client") == 0)
            client_bin = argv[i + 1];
        else {
            fprintf(stderr, "zbench: unknown flag %s\n", argv[i]);
            return 2;
        }
    }
    if (strcmp(transport, "ipc") == 0) {
        strcpy(tmpdir, "/tmp/zbcXXXXXX");
        if (!mkdtemp(tmpdir))
            fail("mkdtemp");
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(argv[1], commands[i].name) == 0) {
            int rc = commands[i].run();
            fflush(stdout);
            if (tmpdir[0]) {
                char cmd[128];
                snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
                if (system(cmd) != 0)
                    rc = 1;
            }
            return rc;
        }
    fprintf(stderr, "zbench: unknown scenario %s\n", argv[1]);
    return 2;
}
