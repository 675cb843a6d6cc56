// The execution engine of cudasim (see cudasim.h): blocks over OS threads, threads as fibers,
// block barriers and warp exchanges decided by a scheduler that runs every ready fiber to its
// next wait, in thread order (or reverse order, to shake out missing barriers).
#include "cudasim.h"

#include <ucontext.h>

#include <atomic>
#include <cstring>
#include <memory>
#include <mutex>
#include <sstream>
#include <thread>
#include <vector>

namespace cudasim {
namespace {

constexpr size_t kStackBytes = 64 * 1024;
constexpr unsigned kMaxThreadsPerBlock = 1024;
constexpr unsigned char kPoison = 0xA5;   // fills dynamic shared memory: reading it unwritten shows

int g_os_threads = 1;
int g_max_shared = 227 * 1024;
bool g_reverse = false;

enum class Wait { kReady, kBlockBarrier, kWarpExchange, kDone };

struct Fiber {
  ucontext_t context;
  std::unique_ptr<char[]> stack;
  ThreadState state;
  Wait wait = Wait::kDone;
  unsigned mask = 0;   // of the warp exchange it waits at
  int source = 0;      // the lane whose word it reads
  uint64_t word = 0;   // its word, then the word it read
};

// One per OS thread: the fibers of the block it runs now (reused from block to block).
struct Worker {
  std::vector<Fiber> fibers;
  ucontext_t scheduler;
  std::vector<unsigned char> shared;
  const std::function<void()>* body = nullptr;
  int current = -1;
  std::string error;
};

thread_local Worker* t_worker = nullptr;

Fiber& running() { return t_worker->fibers[t_worker->current]; }

void yield_to_scheduler() { swapcontext(&running().context, &t_worker->scheduler); }

void fiber_entry() {
  Worker* w = t_worker;
  try {
    (*w->body)();
  } catch (const std::exception& e) {
    if (w->error.empty()) w->error = e.what();
  }
  running().wait = Wait::kDone;
  yield_to_scheduler();   // never resumed
}

std::string where(const ThreadState& s) {
  std::ostringstream out;
  out << "block (" << s.block_idx.x << "," << s.block_idx.y << "," << s.block_idx.z << ") thread ("
      << s.thread_idx.x << "," << s.thread_idx.y << "," << s.thread_idx.z << ")";
  return out.str();
}

// Releases the warp exchanges whose named lanes are all there; reports those that can never be.
// Called when no fiber is ready, so every lane is done, at the block barrier or at an exchange.
bool release_warp_exchanges(Worker& w) {
  bool released = false;
  const int n = static_cast<int>(w.fibers.size());
  for (int base = 0; base < n; base += 32) {
    for (int lane = 0; lane < 32 && base + lane < n; ++lane) {
      Fiber& f = w.fibers[base + lane];
      if (f.wait != Wait::kWarpExchange) continue;
      const unsigned mask = f.mask;
      if (!(mask >> lane & 1u))
        throw KernelError("shuffle at " + where(f.state) + ": its own lane is not in the mask");
      if (!(mask >> f.source & 1u))
        throw KernelError("shuffle at " + where(f.state) + " reads lane " + std::to_string(f.source) +
                          ", which the mask does not name");
      for (int other = 0; other < 32; ++other) {
        if (!(mask >> other & 1u)) continue;
        if (base + other >= n)
          throw KernelError("shuffle at " + where(f.state) + ": the mask names lane " + std::to_string(other) +
                            ", which the block does not have");
        const Fiber& o = w.fibers[base + other];
        if (o.wait != Wait::kWarpExchange || o.mask != mask)
          throw KernelError("shuffle at " + where(f.state) + ": lane " + std::to_string(other) +
                            (o.wait == Wait::kDone ? " has exited" :
                             o.wait == Wait::kBlockBarrier ? " waits at __syncthreads" : " shuffles with another mask") +
                            " (divergent warp)");
      }
      uint64_t words[32];
      for (int other = 0; other < 32; ++other)
        if (mask >> other & 1u) words[other] = w.fibers[base + other].word;
      for (int other = 0; other < 32; ++other) {
        if (!(mask >> other & 1u)) continue;
        Fiber& o = w.fibers[base + other];
        o.word = words[o.source];
        o.wait = Wait::kReady;
      }
      released = true;
    }
  }
  return released;
}

void run_block(Worker& w, dim3 grid, dim3 block, unsigned linear_block, size_t shared_bytes) {
  const unsigned threads = block.x * block.y * block.z;
  if (w.fibers.size() < threads) w.fibers.resize(threads);
  w.fibers.resize(threads);
  w.shared.assign(shared_bytes, kPoison);
  w.error.clear();
  const dim3 block_idx(linear_block % grid.x, linear_block / grid.x % grid.y, linear_block / (grid.x * grid.y));
  for (unsigned t = 0; t < threads; ++t) {
    Fiber& f = w.fibers[t];
    if (!f.stack) f.stack.reset(new char[kStackBytes]);
    f.state = {dim3(t % block.x, t / block.x % block.y, t / (block.x * block.y)), block_idx, block, grid};
    f.wait = Wait::kReady;
    getcontext(&f.context);
    f.context.uc_stack.ss_sp = f.stack.get();
    f.context.uc_stack.ss_size = kStackBytes;
    f.context.uc_link = nullptr;
    makecontext(&f.context, fiber_entry, 0);
  }
  while (true) {
    for (unsigned k = 0; k < threads; ++k) {
      const int t = static_cast<int>(g_reverse ? threads - 1 - k : k);
      if (w.fibers[t].wait != Wait::kReady) continue;
      w.current = t;
      swapcontext(&w.scheduler, &w.fibers[t].context);
      if (!w.error.empty()) throw KernelError(w.error + " (at " + where(w.fibers[t].state) + ")");
    }
    if (release_warp_exchanges(w)) continue;
    unsigned done = 0, waiting = 0;
    for (const Fiber& f : w.fibers) {
      done += f.wait == Wait::kDone;
      waiting += f.wait == Wait::kBlockBarrier;
    }
    if (done == threads) return;
    if (done > 0)
      throw KernelError("__syncthreads in block (" + std::to_string(block_idx.x) + "," + std::to_string(block_idx.y) +
                        ") is not reached by all threads: " + std::to_string(done) + " exited, " +
                        std::to_string(waiting) + " wait");
    for (Fiber& f : w.fibers) f.wait = Wait::kReady;   // every thread is at the barrier
  }
}

}  // namespace

const ThreadState& current() {
  if (t_worker == nullptr || t_worker->current < 0) throw KernelError("a device built-in was used outside a kernel");
  return running().state;
}

void syncthreads() {
  running().wait = Wait::kBlockBarrier;
  yield_to_scheduler();
}

int lane_id() {
  const ThreadState& s = current();
  return static_cast<int>((s.thread_idx.x + s.block_dim.x * (s.thread_idx.y + s.block_dim.y * s.thread_idx.z)) % 32);
}

uint64_t warp_exchange(unsigned mask, uint64_t word, int source) {
  Fiber& f = running();
  f.mask = mask;
  f.source = source;
  f.word = word;
  f.wait = Wait::kWarpExchange;
  yield_to_scheduler();
  return running().word;
}

void* dynamic_shared_memory() {
  current();
  return t_worker->shared.data();
}

void set_os_threads(int threads) { g_os_threads = threads < 1 ? 1 : threads; }
void set_max_shared_bytes(int bytes) { g_max_shared = bytes; }
void set_reverse_schedule(bool reverse) { g_reverse = reverse; }
int max_shared_bytes() { return g_max_shared; }
int multiprocessor_count() { return 4; }

void launch(dim3 grid, dim3 block, size_t shared_bytes, const std::function<void()>& body) {
  const uint64_t threads = uint64_t{block.x} * block.y * block.z;
  if (threads == 0 || threads > kMaxThreadsPerBlock)
    throw KernelError("launch with " + std::to_string(threads) + " threads per block (1..1024 allowed)");
  if (grid.x == 0 || grid.y == 0 || grid.z == 0 || grid.y > 65535 || grid.z > 65535)
    throw KernelError("launch with grid (" + std::to_string(grid.x) + "," + std::to_string(grid.y) + "," +
                      std::to_string(grid.z) + "): each of y and z must lie in 1..65535");
  if (shared_bytes > static_cast<size_t>(g_max_shared))
    throw KernelError("launch asks for " + std::to_string(shared_bytes) + " bytes of dynamic shared memory, more "
                      "than the device's " + std::to_string(g_max_shared));
  const uint64_t blocks = uint64_t{grid.x} * grid.y * grid.z;
  std::atomic<uint64_t> next{0};
  std::mutex error_lock;
  std::string first_error;
  auto work = [&] {
    Worker worker;
    worker.body = &body;
    Worker* saved = t_worker;
    t_worker = &worker;
    for (uint64_t b; (b = next.fetch_add(1)) < blocks;) {
      try {
        run_block(worker, grid, block, static_cast<unsigned>(b), shared_bytes);
      } catch (const KernelError& e) {
        std::lock_guard<std::mutex> hold(error_lock);
        if (first_error.empty()) first_error = e.what();
        next = blocks;   // stop handing out blocks
      }
      worker.current = -1;
    }
    t_worker = saved;
  };
  const int os_threads = static_cast<int>(std::min<uint64_t>(g_os_threads, blocks));
  if (os_threads <= 1) {
    work();
  } else {
    std::vector<std::thread> pool;
    for (int i = 0; i < os_threads; ++i) pool.emplace_back(work);
    for (auto& t : pool) t.join();
  }
  if (!first_error.empty()) throw KernelError(first_error);
}

}  // namespace cudasim
