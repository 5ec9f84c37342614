/* fdiff's probe for `--stacks` on a running process (issue 12): raw tracepoints on
   sys_exit (the fd-creating syscalls' new fds, with the user registers and a copy of the top
   of the user stack, for userspace to unwind with DWARF CFI), sys_enter (close and
   close_range, so userspace forgets the fd) and sched_process_exec (new addresses). Only threads of armed tgids are recorded.

   x86_64 only. No vmlinux.h or libbpf headers: the few kernel layouts used are written out
   below, so the object builds with a bare `clang -target bpf`. Rebuild with
   scripts/build-bpf.sh; the object is committed beside this file. */

typedef unsigned char __u8;
typedef unsigned int __u32;
typedef unsigned long long __u64;
typedef long long __s64;

#define SEC(name) __attribute__((section(name), used))
#define INLINE static inline __attribute__((always_inline))

/* The legacy map definition the loader in src/bpf.rs reads (section "maps"). */
struct map_def {
    __u32 type;
    __u32 key_size;
    __u32 value_size;
    __u32 max_entries;
    __u32 flags;
};

#define BPF_MAP_TYPE_HASH 1
#define BPF_MAP_TYPE_PERCPU_ARRAY 6
#define BPF_MAP_TYPE_RINGBUF 27

/* Helpers by number (include/uapi/linux/bpf.h). */
static void *(*bpf_map_lookup_elem)(void *map, const void *key) = (void *)1;
static __u64 (*bpf_ktime_get_ns)(void) = (void *)5;
static __u64 (*bpf_get_current_pid_tgid)(void) = (void *)14;
static long (*bpf_probe_read_user)(void *dst, __u32 size, const void *src) = (void *)112;
static long (*bpf_probe_read_kernel)(void *dst, __u32 size, const void *src) = (void *)113;
static void *(*bpf_ringbuf_reserve)(void *ringbuf, __u64 size, __u64 flags) = (void *)131;
static void (*bpf_ringbuf_submit)(void *data, __u64 flags) = (void *)132;
static long (*bpf_probe_read_user_str)(void *dst, __u32 size, const void *src) = (void *)114;
static __u64 (*bpf_ringbuf_query)(void *ringbuf, __u64 flags) = (void *)134;

#define BPF_RB_NO_WAKEUP 1
#define BPF_RB_FORCE_WAKEUP 2
#define BPF_RB_AVAIL_DATA 0
#define BPF_RB_RING_SIZE 1

/* A wakeup of the reader per record costs the traced thread more than the record itself:
   wake it only once the ring is a quarter full; it also polls on a timer. */
INLINE __u64 wakeup(void *ring) {
    return bpf_ringbuf_query(ring, BPF_RB_AVAIL_DATA) * 4 > bpf_ringbuf_query(ring, BPF_RB_RING_SIZE)
               ? BPF_RB_FORCE_WAKEUP
               : BPF_RB_NO_WAKEUP;
}

/* tgid → 1 for the processes fdiff armed. */
struct map_def SEC("maps") armed = {
    .type = BPF_MAP_TYPE_HASH, .key_size = 4, .value_size = 1, .max_entries = 1024,
};
/* The records to userspace; the loader sets the size (a power of two of pages). */
struct map_def SEC("maps") events = {
    .type = BPF_MAP_TYPE_RINGBUF, .max_entries = 1 << 23,
};
/* [0]: opens not recorded (ring full); [1]: closes and execs not recorded. */
struct map_def SEC("maps") drops = {
    .type = BPF_MAP_TYPE_PERCPU_ARRAY, .key_size = 4, .value_size = 8, .max_entries = 2,
};

/* struct pt_regs of x86_64, by offset. */
#define REG_BP 32
#define REG_R10 56
#define REG_DI 112
#define REG_SI 104
#define REG_ORIG_AX 120
#define REG_IP 128
#define REG_SP 152

/* The bytes of user stack copied above sp: the unwinder stops where the copy ends. */
#define STACK_BYTES 8192
#define PAGE 4096
#define PATH_BYTES 256

#define KIND_OPEN 1
#define KIND_CLOSE 2
#define KIND_EXEC 3

/* One record; the same layout is read in src/bpf.rs. */
struct record {
    __u32 kind;
    __u32 tgid;
    __u32 tid;
    __u32 nr;
    __s64 fd;   /* the new fd; for a close the first fd */
    __s64 fd2;  /* pipe/socketpair's second fd; for a close the last fd; else -1 */
    __u64 time; /* CLOCK_MONOTONIC ns */
    __u64 ip;
    __u64 sp;
    __u64 bp;
    __u64 len;  /* stack bytes valid in `stack`, from sp's page start */
    char path[PATH_BYTES]; /* open/creat/openat/openat2's path argument, for an fd closed
                              before userspace reads its link */
    __u8 stack[STACK_BYTES];
};

INLINE __u64 reg(void *regs, int off) {
    __u64 v = 0;
    bpf_probe_read_kernel(&v, sizeof(v), (char *)regs + off);
    return v;
}

INLINE void count_drop(__u32 which) {
    __u64 *n = bpf_map_lookup_elem(&drops, &which);
    if (n) *n += 1;
}

/* Syscall numbers (x86_64) whose return value is a new fd. */
INLINE int returns_fd(__u64 nr, void *regs) {
    switch (nr) {
    case 2: case 85: case 257: case 437:            /* open creat openat openat2 */
    case 41: case 43: case 288:                     /* socket accept accept4 */
    case 32: case 33: case 292:                     /* dup dup2 dup3 */
    case 284: case 290: case 213: case 291:         /* eventfd eventfd2 epoll_create(1) */
    case 283: case 282: case 289:                   /* timerfd_create signalfd signalfd4 */
    case 253: case 294: case 300:                   /* inotify_init(1) fanotify_init */
    case 319: case 434: case 438:                   /* memfd_create pidfd_open pidfd_getfd */
        return 1;
    case 72: {                                      /* fcntl: F_DUPFD, F_DUPFD_CLOEXEC */
        __u64 cmd = reg(regs, REG_SI);
        return cmd == 0 || cmd == 1030;
    }
    }
    return 0;
}

SEC("raw_tracepoint/sys_exit")
int fd_exit(__u64 *ctx) {
    __u64 id = bpf_get_current_pid_tgid();
    __u32 tgid = id >> 32;
    if (!bpf_map_lookup_elem(&armed, &tgid)) return 0;
    void *regs = (void *)ctx[0];
    __s64 ret = (__s64)ctx[1];
    if (ret < 0) return 0;
    __u64 nr = reg(regs, REG_ORIG_AX);
    int pair = nr == 22 || nr == 293 || nr == 53;   /* pipe pipe2 socketpair */
    if (!pair && !returns_fd(nr, regs)) return 0;
    struct record *r = bpf_ringbuf_reserve(&events, sizeof(struct record), 0);
    if (!r) {
        count_drop(0);
        return 0;
    }
    r->kind = KIND_OPEN;
    r->tgid = tgid;
    r->tid = (__u32)id;
    r->nr = (__u32)nr;
    r->fd = ret;
    r->fd2 = -1;
    if (pair) {
        int fds[2] = {-1, -1};
        __u64 at = reg(regs, nr == 53 ? REG_R10 : REG_DI);
        bpf_probe_read_user(fds, sizeof(fds), (void *)at);
        r->fd = fds[0];
        r->fd2 = fds[1];
    }
    r->time = bpf_ktime_get_ns();
    r->path[0] = 0;
    if (nr == 2 || nr == 85)
        bpf_probe_read_user_str(r->path, PATH_BYTES, (void *)reg(regs, REG_DI));
    else if (nr == 257 || nr == 437)
        bpf_probe_read_user_str(r->path, PATH_BYTES, (void *)reg(regs, REG_SI));
    __u64 sp = reg(regs, REG_SP);
    r->ip = reg(regs, REG_IP);
    r->sp = sp;
    r->bp = reg(regs, REG_BP);
    /* Page by page from the page holding sp, so the copy stops at the end of the stack's
       mapping rather than failing whole, and every copy has a constant offset and size (the
       verifier bounds them). `stack` holds the bytes from sp & ~(PAGE-1) up. */
    __u64 base = sp & ~(__u64)(PAGE - 1);
    __u64 len = 0;
#pragma unroll
    for (int i = 0; i < STACK_BYTES / PAGE; i++) {
        if (bpf_probe_read_user(r->stack + i * PAGE, PAGE, (void *)(base + i * PAGE)) != 0) break;
        len = (i + 1) * PAGE;
    }
    r->len = len;
    bpf_ringbuf_submit(r, wakeup(&events));
    return 0;
}

/* The head of a record, for closes. */
struct close_record {
    __u32 kind;
    __u32 tgid;
    __u32 tid;
    __u32 nr;
    __s64 fd;
    __s64 fd2;
    __u64 time;
};

SEC("raw_tracepoint/sys_enter")
int fd_enter(__u64 *ctx) {
    __u64 nr = ctx[1];
    if (nr != 3 && nr != 436) return 0;              /* close close_range */
    __u64 id = bpf_get_current_pid_tgid();
    __u32 tgid = id >> 32;
    if (!bpf_map_lookup_elem(&armed, &tgid)) return 0;
    void *regs = (void *)ctx[0];
    __s64 first = (__s64)reg(regs, REG_DI);
    __s64 last = first;
    if (nr == 436) {
        /* close_range(first, last, flags): CLOSE_RANGE_CLOEXEC (4) closes nothing. */
        __u64 flags = reg(regs, 96);                  /* dx */
        if (flags & 4) return 0;
        last = (__s64)(__u32)reg(regs, REG_SI);
        first = (__s64)(__u32)first;
    }
    struct close_record *r = bpf_ringbuf_reserve(&events, sizeof(*r), 0);
    if (!r) {
        count_drop(1);
        return 0;
    }
    r->kind = KIND_CLOSE;
    r->tgid = tgid;
    r->tid = (__u32)id;
    r->nr = (__u32)nr;
    r->fd = first;
    r->fd2 = last;
    r->time = bpf_ktime_get_ns();
    bpf_ringbuf_submit(r, wakeup(&events));
    return 0;
}

/* An armed process exec'd: its old addresses mean nothing now. */
SEC("raw_tracepoint/sched_process_exec")
int fd_exec(__u64 *ctx) {
    (void)ctx;
    __u64 id = bpf_get_current_pid_tgid();
    __u32 tgid = id >> 32;
    if (!bpf_map_lookup_elem(&armed, &tgid)) return 0;
    struct close_record *r = bpf_ringbuf_reserve(&events, sizeof(*r), 0);
    if (!r) {
        count_drop(1);
        return 0;
    }
    r->kind = KIND_EXEC;
    r->tgid = tgid;
    r->tid = (__u32)id;
    r->nr = 59;
    r->fd = -1;
    r->fd2 = -1;
    r->time = bpf_ktime_get_ns();
    bpf_ringbuf_submit(r, wakeup(&events));
    return 0;
}

char _license[] SEC("license") = "GPL";
