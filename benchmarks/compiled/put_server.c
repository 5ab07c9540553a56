/* The keepstore PUT path in C, for benchmarks/keep_throughput.py --compiled: what a compiled server
 * reaches on the same machine doing the same work (receive a block over HTTP, md5 it, write it to a
 * temp file with O_DIRECT, fsync, rename, answer with the locator). One thread receives, one hashes
 * and one writes, over a ring of 4 pieces of 2 MiB: the shape of keepstore/receive.py. No signing,
 * no auth: those cost nothing at this size. Written for this project; not a server to deploy.
 *
 *   cc -O2 -o put_server put_server.c -lcrypto -lpthread && ./put_server PORT DIR
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <openssl/md5.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define PIECE (2 << 20)
#define SLOTS 4
#define ALIGN 4096

struct lane { pthread_mutex_t m; pthread_cond_t c; long ready; long done; };
static unsigned char *slot[SLOTS];
static long piece_len[1 << 12];
static long pieces;
static struct lane hashed, written;
static MD5_CTX ctx;
static int out_fd;

static void lane_init(struct lane *l) { pthread_mutex_init(&l->m, 0); pthread_cond_init(&l->c, 0); l->ready = l->done = 0; }
static void lane_set(struct lane *l, long *field, long v) { pthread_mutex_lock(&l->m); *field = v; pthread_cond_broadcast(&l->c); pthread_mutex_unlock(&l->m); }
static void lane_wait(struct lane *l, long *field, long v) { pthread_mutex_lock(&l->m); while (*field < v) pthread_cond_wait(&l->c, &l->m); pthread_mutex_unlock(&l->m); }

static void *hasher(void *arg) {
    (void)arg;
    for (long k = 0; k < pieces; k++) {
        lane_wait(&hashed, &hashed.ready, k + 1);
        MD5_Update(&ctx, slot[k % SLOTS], piece_len[k]);
        lane_set(&hashed, &hashed.done, k + 1);
    }
    return 0;
}

static void *writer(void *arg) {
    (void)arg;
    for (long k = 0; k < pieces; k++) {
        lane_wait(&written, &written.ready, k + 1);
        long n = (piece_len[k] + ALIGN - 1) / ALIGN * ALIGN;
        memset(slot[k % SLOTS] + piece_len[k], 0, n - piece_len[k]);
        if (pwrite(out_fd, slot[k % SLOTS], n, k * (long)PIECE) != n) { perror("pwrite"); exit(1); }
        lane_set(&written, &written.done, k + 1);
    }
    return 0;
}

static int serve(int conn, const char *dir) {
    char head[8192]; long got = 0; char *end = 0;
    while (!end) {
        long n = recv(conn, head + got, sizeof head - 1 - got, 0);
        if (n <= 0) return -1;
        got += n; head[got] = 0; end = strstr(head, "\r\n\r\n");
    }
    char md5hex[33] = {0}; sscanf(head, "PUT /%32s", md5hex);
    char *cl = strcasestr(head, "Content-Length:"); long length = cl ? atol(cl + 15) : 0;
    long first = got - (end + 4 - head);
    char temp[4096], final[4096];
    snprintf(temp, sizeof temp, "%s/%s.tmp", dir, md5hex); snprintf(final, sizeof final, "%s/%s", dir, md5hex);
    out_fd = open(temp, O_WRONLY | O_CREAT | O_TRUNC | O_DIRECT, 0600);
    if (out_fd < 0) { perror("open"); return -1; }
    pieces = (length + PIECE - 1) / PIECE;
    lane_init(&hashed); lane_init(&written); MD5_Init(&ctx);
    pthread_t h, w; pthread_create(&h, 0, hasher, 0); pthread_create(&w, 0, writer, 0);
    long received = 0;
    for (long k = 0; k < pieces; k++) {
        if (k >= SLOTS) { lane_wait(&hashed, &hashed.done, k - SLOTS + 1); lane_wait(&written, &written.done, k - SLOTS + 1); }
        long want = length - received < PIECE ? length - received : PIECE, have = 0;
        if (k == 0 && first > 0) { memcpy(slot[0], end + 4, first); have = first; }
        while (have < want) {
            long n = recv(conn, slot[k % SLOTS] + have, want - have, 0);
            if (n <= 0) return -1;
            have += n;
        }
        piece_len[k] = want; received += want;
        lane_set(&hashed, &hashed.ready, k + 1); lane_set(&written, &written.ready, k + 1);
    }
    pthread_join(h, 0); pthread_join(w, 0);
    unsigned char digest[16]; MD5_Final(digest, &ctx);
    char hex[33]; for (int i = 0; i < 16; i++) sprintf(hex + 2 * i, "%02x", digest[i]);
    ftruncate(out_fd, length); fsync(out_fd); close(out_fd);
    char reply[512]; char body[128];
    int ok = strcmp(hex, md5hex) == 0;
    if (ok) rename(temp, final); else unlink(temp);
    snprintf(body, sizeof body, "%s+%ld\n", hex, length);
    snprintf(reply, sizeof reply, "HTTP/1.1 %s\r\nContent-Length: %zu\r\nX-Keep-Replicas-Stored: 1\r\n\r\n%s",
             ok ? "200 OK" : "422 Unprocessable Entity", strlen(body), body);
    send(conn, reply, strlen(reply), 0);
    return 0;
}

int main(int argc, char **argv) {
    if (argc != 3) { fprintf(stderr, "usage: put_server PORT DIR\n"); return 2; }
    for (int i = 0; i < SLOTS; i++) if (posix_memalign((void **)&slot[i], ALIGN, PIECE)) return 1;
    int s = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(atoi(argv[1])), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (bind(s, (struct sockaddr *)&a, sizeof a) || listen(s, 16)) { perror("listen"); return 1; }
    printf("listening\n"); fflush(stdout);
    for (;;) {
        int conn = accept(s, 0, 0);
        while (serve(conn, argv[2]) == 0) {}
        close(conn);
    }
}
