// LD_AUDIT module that makes this CPU look like an AVX2-only one (no AVX-512, AMX, AVX-VNNI) to every
// program that asks CPUID: oneDNN, onnxruntime's MLAS, GCC's __builtin_cpu_supports, V8. Used by run.py for
// the "AVX2-only CPU" rows, where both vit and onnxruntime pick their AVX2 code paths in the same run.
//
//     cc -O2 -shared -fPIC scripts/bench/hide_avx512.c -o hide_avx512.so
//     LD_AUDIT=$PWD/hide_avx512.so PROGRAM ...       (node: add --disable-wasm-trap-handler, see below)
//
// LD_AUDIT, not LD_PRELOAD: the dynamic loader calls an audit module's la_version before it loads the
// program's libraries, so the shim is in place before any of their constructors asks CPUID (with LD_PRELOAD, oneDNN
// still reported AMX: a preloaded library's constructor runs after those of the libraries loaded with it).
// How: arch_prctl(ARCH_SET_CPUID, 0) makes the CPUID instruction fault (needs the cpuid_fault CPU flag; the
// setting is inherited by threads and child processes and reset by execve, so every process loads the shim
// again); the SIGSEGV handler runs the real CPUID with faulting briefly off, clears the feature bits and
// resumes after the instruction. Any other SIGSEGV goes to the default action (or to a handler the program
// installed later and that chains to ours). node 20 segfaulted under the shim unless started with
// --disable-wasm-trap-handler (it has its own SIGSEGV handling for WebAssembly, which onnxruntime-node does not use).
// glibc's string functions may keep variants picked from CPUID reads made before the shim loaded: not code whose
// speed run.py compares.
#define _GNU_SOURCE
#include <asm/prctl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

static void cpuid_raw(unsigned leaf, unsigned sub, unsigned r[4]) {
    __asm__ volatile("cpuid" : "=a"(r[0]), "=b"(r[1]), "=c"(r[2]), "=d"(r[3]) : "a"(leaf), "c"(sub));
}

#define BIT(n) (1u << (n))

static void hide(unsigned leaf, unsigned sub, unsigned r[4]) {
    if (leaf == 7 && sub == 0) {
        // EBX: AVX512F, DQ, IFMA, PF, ER, CD, BW, VL
        r[1] &= ~(BIT(16) | BIT(17) | BIT(21) | BIT(26) | BIT(27) | BIT(28) | BIT(30) | BIT(31));
        // ECX: AVX512_VBMI, VBMI2, VNNI, BITALG, VPOPCNTDQ
        r[2] &= ~(BIT(1) | BIT(6) | BIT(11) | BIT(12) | BIT(14));
        // EDX: AVX512_4VNNIW, 4FMAPS, VP2INTERSECT, AMX_BF16, AVX512_FP16, AMX_TILE, AMX_INT8
        r[3] &= ~(BIT(2) | BIT(3) | BIT(8) | BIT(22) | BIT(23) | BIT(24) | BIT(25));
    } else if (leaf == 7 && sub == 1) {
        r[0] &= ~(BIT(4) | BIT(5));  // EAX: AVX-VNNI, AVX512_BF16
    } else if (leaf == 0xd && sub == 0) {
        r[0] &= ~(BIT(5) | BIT(6) | BIT(7) | BIT(17) | BIT(18));  // XSAVE: opmask, ZMM state, AMX tile state
    }
}

static int set_cpuid_faulting(int on) { return (int)syscall(SYS_arch_prctl, ARCH_SET_CPUID, on ? 0 : 1); }

static void on_segv(int sig, siginfo_t* info, void* context) {
    ucontext_t* uc = (ucontext_t*)context;
    greg_t* g = uc->uc_mcontext.gregs;
    const unsigned char* ip = (const unsigned char*)g[REG_RIP];
    // a faulting CPUID is a general-protection fault: si_code SI_KERNEL, RIP at the 0F A2 opcode
    if (info->si_code == SI_KERNEL && ip[0] == 0x0f && ip[1] == 0xa2) {
        unsigned r[4];
        const unsigned leaf = (unsigned)g[REG_RAX], sub = (unsigned)g[REG_RCX];
        set_cpuid_faulting(0);
        cpuid_raw(leaf, sub, r);
        set_cpuid_faulting(1);
        hide(leaf, sub, r);
        g[REG_RAX] = r[0];
        g[REG_RBX] = r[1];
        g[REG_RCX] = r[2];
        g[REG_RDX] = r[3];
        g[REG_RIP] += 2;
        return;
    }
    signal(sig, SIG_DFL);  // not ours: returning re-runs the instruction, which now takes the default action
}

unsigned la_version(unsigned version) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_segv;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGSEGV, &sa, NULL) != 0 || set_cpuid_faulting(1) != 0) {
        static const char msg[] = "hide_avx512: this CPU or kernel cannot make CPUID fault (no cpuid_fault)\n";
        if (write(2, msg, sizeof msg - 1) < 0) abort();
        _exit(99);
    }
    return version;  // the loader's own interface version: accepted as is
}
