// Signal handling and standard-descriptor guards (see process.hpp).
#include "process.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <csignal>

#include "atomic_output.hpp"

namespace vit::app {

namespace {

volatile std::sig_atomic_t g_signals = 0;

extern "C" void on_signal(int sig) {
    if (g_signals++ == 0) return;  // the first one: the run stops at the next check
    // A second one: nothing more is committed; leave no temporary file behind and die of the signal.
    AtomicOutput::remove_temporaries_now();
    std::signal(sig, SIG_DFL);
    std::raise(sig);
}

}  // namespace

void install_interrupt_handlers() {
    struct sigaction sa {};
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    for (int sig : {SIGINT, SIGTERM, SIGHUP}) ::sigaction(sig, &sa, nullptr);
    std::signal(SIGXFSZ, SIG_IGN);
}

bool interrupted() { return g_signals != 0; }

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
