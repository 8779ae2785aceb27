/* boxnet-cni: the CNI plugin executable runtimes exec (issue 18), a forwarder to boxnetd.
 *
 * It sends the CNI_* variables and stdin, as they are, to boxnetd in one request (POST
 * /boxnet/cni/invoke on its unix socket; the framing is cni/verbs.py's, the protocol of the
 * Python plugin too), then prints the answer's body and exits with the status the answer's
 * Boxnet-CNI-Exit header gives. boxnetd does the verb (cni/verbs.py: checks, results, error
 * objects), so this program knows nothing of CNI's JSON beyond finding "boxnetHost".
 *
 * Anything else (boxnetd not answering, an answer that is not an invoke answer, arguments such
 * as `install DIR`, inputs too large for the buffers) execs the Python plugin, cni/plugin.py,
 * with the same stdin: it is the reference and behaves the same, with the daemon (it sends the
 * same request) and without (VERSION answered, input errors with their codes, else code 11).
 * Why C: a Python start alone is ~20 ms of a runtime's wait per container (docs/CHOICES.md).
 *
 * Built by `make install`: gcc -DBOXNET_PYTHON='"/path/python"' -DBOXNET_SRC='"/path/src"'.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#ifndef BOXNET_PYTHON
#error "build with -DBOXNET_PYTHON='\"/path/to/python\"'"
#endif
#ifndef BOXNET_SRC
#error "build with -DBOXNET_SRC='\"/path/to/src\"'"
#endif

#define MAX_INPUT (4u << 20)  /* stdin kept in memory; more goes to the Python plugin */
#define MAX_ANSWER (4u << 20) /* boxnetd's answer */
#define TIMEOUT_S 60          /* as plugin.py: an ADD may create the network first */

/* What is forwarded, in cni/verbs.py's order (VARIABLES there): the same bytes as Python's. */
static const char *const VARIABLES[] = {"CNI_COMMAND", "CNI_CONTAINERID", "CNI_NETNS",
                                        "CNI_IFNAME",  "CNI_ARGS",        "CNI_PATH"};

struct buf { char *data; size_t len, cap; };

/* Append n bytes; 0 on success, -1 when the total would pass `limit` or memory runs out. */
static int append(struct buf *b, const void *src, size_t n, size_t limit) {
    if (n > limit || b->len > limit - n) return -1;
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n) cap = cap > limit / 2 ? limit : cap * 2;
        char *data = realloc(b->data, cap);
        if (!data) return -1;
        b->data = data;
        b->cap = cap;
    }
    memcpy(b->data + b->len, src, n);
    b->len += n;
    return 0;
}

/* Write all of data to fd; 0 on success. */
static int write_all(int fd, const char *data, size_t len) {
    for (size_t off = 0; off < len;) {
        ssize_t n = write(fd, data + off, len - off);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return -1;
        off += (size_t)n;
    }
    return 0;
}

/* Exec the Python plugin; its stdin: what was read (in, then `more`), then the rest of ours. */
static __attribute__((noreturn)) void fallback(char **argv, const struct buf *in,
                                              const char *more, size_t more_len, int stdin_read) {
    if (stdin_read) {
        int fd = memfd_create("boxnet-cni-stdin", MFD_CLOEXEC);
        char chunk[65536];
        ssize_t n;
        if (fd < 0 || (in->len && write_all(fd, in->data, in->len)) ||
            write_all(fd, more, more_len))
            goto failed;
        while ((n = read(0, chunk, sizeof chunk)) != 0) { /* what did not fit in memory */
            if (n < 0 && errno == EINTR) continue;
            if (n < 0 || write_all(fd, chunk, (size_t)n)) goto failed;
        }
        if (lseek(fd, 0, SEEK_SET) != 0 || dup2(fd, 0) != 0) goto failed;
        if (fd == 0 && fcntl(0, F_SETFD, 0) != 0) goto failed; /* (our stdin was closed) */
    }
    int argc = 0;
    while (argv[argc]) argc++;
    char **args = calloc((size_t)argc + 5, sizeof *args);
    if (!args) goto failed;
    args[0] = BOXNET_PYTHON;
    args[1] = "-IS";
    args[2] = "-c";
    args[3] = "import sys; sys.path.insert(0, sys.argv.pop(1));"
              " from boxnet.cni.plugin import main; sys.exit(main())";
    args[4] = BOXNET_SRC;
    for (int i = 1; i < argc; i++) args[4 + i] = argv[i];
    execv(args[0], args);
failed:;
    int err = errno;
    printf("{\"cniVersion\": \"1.1.0\", \"code\": 11, \"msg\": \"boxnetd did not answer and the "
           "Python plugin (%s) cannot be run: %s\"}\n", BOXNET_PYTHON, strerror(err));
    exit(1);
}

/* JSON: skip whitespace; the end of a string starting at s[i] == '"' (index after it), or 0. */
static size_t ws(const char *s, size_t i, size_t n) {
    while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r')) i++;
    return i;
}
static size_t string_end(const char *s, size_t i, size_t n) {
    for (i++; i < n; i++) {
        if (s[i] == '\\') i++;
        else if (s[i] == '"') return i + 1;
        else if ((unsigned char)s[i] < 0x20) return 0;
    }
    return 0;
}
/* The end of the JSON value at s[i] (objects and arrays are not validated inside), or 0. */
static size_t value_end(const char *s, size_t i, size_t n) {
    if (i >= n) return 0;
    if (s[i] == '"') return string_end(s, i, n);
    if (s[i] != '{' && s[i] != '[') { /* a number, true, false, null */
        size_t start = i;
        while (i < n && s[i] && (isalnum((unsigned char)s[i]) || strchr("+-.", s[i]))) i++;
        return i > start ? i : 0;
    }
    size_t depth = 0;
    while (i < n) {
        if (s[i] == '"') {
            if (!(i = string_end(s, i, n))) return 0;
            continue;
        }
        if (s[i] == '{' || s[i] == '[') depth++;
        else if ((s[i] == '}' || s[i] == ']') && --depth == 0) return i + 1;
        i++;
    }
    return 0;
}

/* The top-level "boxnetHost" string of the configuration (the last one, as Python's json),
 * copied into out: 1; 0 if there is none or the document is not a JSON object; -1 if the
 * value has escapes beyond \" \\ \/ or does not fit (the Python plugin decides then). */
static int boxnet_host(const char *s, size_t n, char *out, size_t size) {
    int found = 0;
    size_t i = ws(s, 0, n);
    if (i >= n || s[i] != '{') return 0;
    i = ws(s, i + 1, n);
    if (i < n && s[i] == '}') return 0;
    for (;;) {
        if (i >= n || s[i] != '"') return 0;
        size_t key = i, key_end = string_end(s, i, n);
        if (!key_end) return 0;
        i = ws(s, key_end, n);
        if (i >= n || s[i] != ':') return 0;
        i = ws(s, i + 1, n);
        size_t end = value_end(s, i, n);
        if (!end) return 0;
        if (key_end - key == 12 && !memcmp(s + key, "\"boxnetHost\"", 12) && s[i] == '"') {
            size_t o = 0;
            found = 1;
            for (size_t j = i + 1; j < end - 1; j++) {
                if (s[j] == '\\') {
                    j++;
                    if (s[j] != '"' && s[j] != '\\' && s[j] != '/') found = -1;
                }
                if (o + 1 >= size) found = -1;
                if (found < 0) break;
                out[o++] = s[j];
            }
            if (found > 0) out[o] = '\0';
        }
        i = ws(s, end, n);
        if (i < n && s[i] == ',') { i = ws(s, i + 1, n); continue; }
        if (i >= n || s[i] != '}') return 0;
        return ws(s, i + 1, n) == n ? found : 0;
    }
}

/* The value of header `name` in head (lines ending "\r\n"), NUL-terminated into out; 0 if absent. */
static int header(const char *head, const char *name, char *out, size_t size) {
    size_t len = strlen(name);
    for (const char *line = strstr(head, "\r\n"); line && line[2]; line = strstr(line + 2, "\r\n")) {
        const char *p = line + 2;
        if (strncasecmp(p, name, len) || p[len] != ':') continue;
        p += len + 1;
        while (*p == ' ' || *p == '\t') p++;
        size_t n = strcspn(p, "\r");
        while (n && (p[n - 1] == ' ' || p[n - 1] == '\t')) n--;
        if (n >= size) return 0;
        memcpy(out, p, n);
        out[n] = '\0';
        return 1;
    }
    return 0;
}

static int digits(const char *s, size_t max_len) {
    size_t n = strlen(s);
    if (!n || n > max_len) return 0;
    for (size_t i = 0; i < n; i++) if (!isdigit((unsigned char)s[i])) return 0;
    return 1;
}

int main(int argc, char **argv) {
    struct buf in = {0}, request = {0}, answer = {0};
    char host[sizeof(((struct sockaddr_un *)0)->sun_path) + 8], chunk[65536], head[256];
    ssize_t n;
    if (argc > 1) fallback(argv, &in, "", 0, 0); /* install DIR, usage: the Python plugin's */
    int from_stdin = !isatty(0);
    while (from_stdin && (n = read(0, chunk, sizeof chunk)) != 0) {
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) fallback(argv, &in, "", 0, 1);
        if (append(&in, chunk, (size_t)n, MAX_INPUT)) fallback(argv, &in, chunk, (size_t)n, 1);
    }
    /* The socket: boxnetHost, else $BOXNET_HOST, else the default; as plugin.socket_path. */
    int given = boxnet_host(in.data ? in.data : "", in.len, host, sizeof host);
    if (given < 0) fallback(argv, &in, "", 0, 1);
    const char *path = given && host[0] ? host : getenv("BOXNET_HOST");
    if (!path || !path[0]) path = "unix:///run/boxnet.sock";
    if (!strncmp(path, "unix://", 7)) path += 7;
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof addr.sun_path) fallback(argv, &in, "", 0, 1);
    memcpy(addr.sun_path, path, strlen(path) + 1);

    struct buf body = {0};
    for (size_t v = 0; v < sizeof VARIABLES / sizeof *VARIABLES; v++) {
        const char *value = getenv(VARIABLES[v]);
        if (!value) continue;
        if (append(&body, VARIABLES[v], strlen(VARIABLES[v]), MAX_INPUT * 2) ||
            append(&body, "=", 1, MAX_INPUT * 2) ||
            append(&body, value, strlen(value) + 1, MAX_INPUT * 2)) /* with its NUL */
            fallback(argv, &in, "", 0, 1);
    }
    if (append(&body, "", 1, MAX_INPUT * 2) ||
        (in.len && append(&body, in.data, in.len, MAX_INPUT * 2)))
        fallback(argv, &in, "", 0, 1);
    int len = snprintf(head, sizeof head,
                       "POST /boxnet/cni/invoke HTTP/1.1\r\nHost: boxnet\r\nConnection: close\r\n"
                       "Content-Type: application/x-boxnet-cni\r\nContent-Length: %zu\r\n\r\n",
                       body.len);
    if (len < 0 || (size_t)len >= sizeof head || append(&request, head, (size_t)len, MAX_INPUT * 3) ||
        append(&request, body.data, body.len, MAX_INPUT * 3))
        fallback(argv, &in, "", 0, 1);

    int sock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct timeval timeout = {.tv_sec = TIMEOUT_S};
    if (sock < 0 || setsockopt(sock, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout) ||
        setsockopt(sock, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout) ||
        connect(sock, (struct sockaddr *)&addr, sizeof addr))
        fallback(argv, &in, "", 0, 1);
    for (size_t off = 0; off < request.len;) {
        n = send(sock, request.data + off, request.len - off, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) fallback(argv, &in, "", 0, 1);
        off += (size_t)n;
    }
    while ((n = recv(sock, chunk, sizeof chunk, 0)) != 0) { /* Connection: close */
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 || append(&answer, chunk, (size_t)n, MAX_ANSWER)) fallback(argv, &in, "", 0, 1);
    }
    close(sock);
    if (append(&answer, "", 1, MAX_ANSWER + 1)) fallback(argv, &in, "", 0, 1); /* a C string */
    answer.len--;

    /* "HTTP/1.1 200 ...", then the head up to the empty line, then the body. */
    char *end = strstr(answer.data, "\r\n\r\n"), value[32], code[8];
    if (!end || strncmp(answer.data, "HTTP/1.", 7) || answer.len < 12 ||
        strncmp(answer.data + 8, " 200 ", 5))
        fallback(argv, &in, "", 0, 1);
    *end = '\0';
    char *out = end + 4;
    size_t out_len = answer.len - (size_t)(out - answer.data);
    if (!header(answer.data, "Boxnet-CNI-Exit", code, sizeof code) || !digits(code, 3) ||
        atoi(code) > 255 || header(answer.data, "Transfer-Encoding", value, sizeof value))
        fallback(argv, &in, "", 0, 1); /* not an invoke answer, or chunked: the Python plugin */
    if (header(answer.data, "Content-Length", value, sizeof value)) {
        if (!digits(value, 9) || (size_t)atol(value) > out_len) fallback(argv, &in, "", 0, 1);
        out_len = (size_t)atol(value);
    }
    for (size_t off = 0; off < out_len;) {
        n = write(1, out + off, out_len - off);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return 1;
        off += (size_t)n;
    }
    return atoi(code);
}
