// libvit_openmp_env.so: sets libgomp's spin count before libgomp reads its environment, without a re-exec.
//
// OpenMP threads that finish a parallel region spin for a long time (libgomp: 300,000 iterations) before
// sleeping. On a shared machine a spinning thread takes the core from the one its team is waiting for, and a
// 2-thread ViT-S/16 pass went from ~180 ms to ~1300-1900 ms under load; a short spin keeps the quick hand-off
// on an idle machine and yields under load. libgomp reads its settings once, in its own ELF constructor, before
// main. The dynamic loader runs the constructors of libraries that do not depend on each other in the reverse
// order of the executable's DT_NEEDED list, so this library, linked last (after libgomp and every library
// that pulls it in; see CMakeLists.txt), runs first. tests/cli/test_startup.sh checks the effect with
// OMP_DISPLAY_ENV. A user's own OMP_WAIT_POLICY or GOMP_SPINCOUNT is left alone.
#include <cstdlib>

namespace {

__attribute__((constructor)) void tune_openmp_waiting() {
    if (std::getenv("OMP_WAIT_POLICY") || std::getenv("GOMP_SPINCOUNT")) return;
    ::setenv("GOMP_SPINCOUNT", "10000", 1);
}

}  // namespace
