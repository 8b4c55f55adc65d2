// Signal handling and standard-descriptor guards (see process.hpp).
#include "process.hpp"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <mutex>
#include <system_error>
#include <thread>

#include "atomic_output.hpp"

namespace vit::app {

namespace {

// Written by the handler on the signal thread, read by the others: an atomic, lock-free (async-signal-safe).
std::atomic<int> g_signals{0};
static_assert(std::atomic<int>::is_always_lock_free);

sigset_t routed_signals() {
    sigset_t set;
    sigemptyset(&set);
    for (int sig : {SIGINT, SIGTERM, SIGHUP}) sigaddset(&set, sig);
    return set;
}

extern "C" void on_signal(int sig) {
    if (g_signals.fetch_add(1) == 0) return;  // the first one: the run stops at the next check
    // A second one: nothing more is committed; leave no temporary file behind and die of the signal.
    AtomicOutput::remove_temporaries_now();
    std::signal(sig, SIG_DFL);
    std::raise(sig);
}

}  // namespace

void route_signals_to_own_thread() {
    static std::once_flag once;
    std::call_once(once, [] {
        const sigset_t routed = routed_signals();
        sigset_t before;
        ::pthread_sigmask(SIG_BLOCK, &routed, &before);  // this thread and every thread started from it
        try {
            std::thread t([routed] {
                ::pthread_sigmask(SIG_UNBLOCK, &routed, nullptr);
                for (;;) ::pause();  // the handlers run here, on this thread's own stack
            });
            ::pthread_setname_np(t.native_handle(), "vit-signals");
            t.detach();
        } catch (const std::system_error&) {
            ::pthread_sigmask(SIG_SETMASK, &before, nullptr);  // no thread to spare: signals reach any thread
        }
    });
}

void install_interrupt_handlers() {
    struct sigaction sa {};
    sa.sa_handler = on_signal;
    sa.sa_mask = routed_signals();  // one handler at a time: a second signal is counted after the first
    sa.sa_flags = SA_RESTART;
    for (int sig : {SIGINT, SIGTERM, SIGHUP}) ::sigaction(sig, &sa, nullptr);
    std::signal(SIGXFSZ, SIG_IGN);
}

bool interrupted() { return g_signals.load() != 0; }

int guard_standard_descriptors() {
    static const int closed = [] {
        int c = 0;
        for (int fd = 0; fd <= 2; ++fd) {
            if (::fcntl(fd, F_GETFD) != -1) continue;
            c |= 1 << fd;
            const int n = ::open("/dev/null", fd == 0 ? O_RDONLY : O_WRONLY);
            if (n >= 0 && n != fd) {
                ::dup2(n, fd);
                ::close(n);
            }
        }
        return c;
    }();
    return closed;
}

}  // namespace vit::app
