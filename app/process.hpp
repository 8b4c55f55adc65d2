// Process-level guards shared by the subcommands that stream results: SIGINT/SIGTERM/SIGHUP handling (the first
// signal asks the run to stop, a second removes temporary output files and ends the process at once) and the
// standard descriptors (a closed stdout must not silently swallow results, nor be reused by a file vit opens).
#pragma once

namespace vit::app {

// Routes SIGINT, SIGTERM and SIGHUP to a thread of vit's own ("vit-signals") that only waits for them: they are
// blocked in the calling thread and so in every thread started after this call (main() calls it before any). The
// signals' dispositions are unchanged: a default one still ends the process, an installed handler runs on that
// thread. Why: oneDNN 2.6's generated GEMM kernels (gemm:jit, every f32 and int8 matmul on a CPU without AVX-512)
// point rsp at a heap buffer while they run, and the kernel writes a signal's frame below rsp: a signal handled
// on a thread inside such a kernel corrupts the heap (oneDNN issue #4845, fixed in oneDNN 3.11). A no-op after the
// first call; without a thread to spare (EAGAIN), signals stay deliverable to every thread as before.
void route_signals_to_own_thread();

// Installs the handlers. SIGXFSZ is ignored so a write over the file size limit fails with EFBIG (and is
// reported) instead of killing the process.
void install_interrupt_handlers();

// True once SIGINT, SIGTERM or SIGHUP has arrived (async-signal-safe flag; cheap).
bool interrupted();

// Opens /dev/null on any of descriptors 0, 1, 2 that is closed, so no file opened later takes their place.
// Returns which were closed: bit 0 stdin, bit 1 stdout, bit 2 stderr. The first call does the work and later
// calls return its answer: main() calls it before anything else opens a file (the image codecs load on a
// thread of their own from the start, and their first library would otherwise become "stdout").
int guard_standard_descriptors();

}  // namespace vit::app
