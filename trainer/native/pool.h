// The addon's threads: started once and kept, so that a product or a kernel task shared across them costs a wake-up
// (microseconds), not a thread start per call. The caller's thread works too. Workers spin for a while after each
// job (the next kernel usually follows within microseconds), then sleep.
#pragma once
#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>

namespace zerovar {

class Pool {
 public:
  // One pool per process; never destroyed, so sleeping workers never outlive their condition variable.
  static Pool& Get() {
    static Pool* pool = new Pool();
    return *pool;
  }

  int threads() const { return threads_; }

  // Threads that share the following jobs, the caller's included. Workers are started on first need and kept.
  void SetThreads(int n) {
    threads_ = std::max(1, n);
    while (started_ < threads_ - 1) {
      const int index = started_++;
      // The generation now, read here: a worker that read it itself, late, would miss a job started meanwhile.
      const uint64_t seen = Generation(state_.load(std::memory_order_acquire));
      std::thread([this, index, seen] { WorkerLoop(index, seen); }).detach();
    }
  }

  // Runs task(0..count-1), each exactly once, on up to threads() threads. Which thread runs a task never changes
  // what the task computes: every task writes its own outputs. The caller claims tasks too and waits only for
  // those a worker has claimed: a worker that is asleep, or slow to wake, costs nothing (on the virtual machines
  // measured, waking one took hundreds of microseconds, longer than many kernels take whole).
  template <typename Task>
  void Run(int count, const Task& task) {
    const int helpers = std::min(threads_, count) - 1;
    if (helpers <= 0 || count >= (1 << kIndexBits)) {
      for (int i = 0; i < count; i++) task(i);
      return;
    }
    // No worker reads these before it has claimed a task of this run, and no task of the last run is unfinished.
    job_ = [](const void* ctx, int i) { (*static_cast<const Task*>(ctx))(i); };
    ctx_ = &task;
    done_.store(0, std::memory_order_relaxed);
    const uint64_t generation = (Generation(state_.load(std::memory_order_relaxed)) + 1) & ((uint64_t{1} << kGenerationBits) - 1);
    state_.store(generation << kGenerationShift | static_cast<uint64_t>(helpers) << kHelperShift | static_cast<uint64_t>(count) << kIndexBits,
                 std::memory_order_seq_cst);
    if (sleepers_.load(std::memory_order_seq_cst) > 0) {
      std::lock_guard<std::mutex> lock(mutex_);
      wake_.notify_all();
    }
    Work(generation);
    for (int spin = 0; done_.load(std::memory_order_acquire) != count; spin++) {
      if (spin < 100000) Pause();
      else std::this_thread::yield();
    }
  }

 private:
  Pool() = default;

  // The run's state in one word, so a claim checks all of it at once: generation, helpers allowed, task count,
  // next task. A claim of run g's task i succeeds only while g is current and i < count.
  static constexpr int kIndexBits = 20, kHelperBits = 6, kGenerationBits = 64 - 2 * kIndexBits - kHelperBits;
  static constexpr int kHelperShift = 2 * kIndexBits, kGenerationShift = kHelperShift + kHelperBits;
  static uint64_t Generation(uint64_t s) { return s >> kGenerationShift; }
  static int Helpers(uint64_t s) { return static_cast<int>(s >> kHelperShift & ((1 << kHelperBits) - 1)); }

  static void Pause() {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#else
    std::this_thread::yield();
#endif
  }

  // Claims and runs run `generation`'s tasks until none is left.
  void Work(uint64_t generation) {
    constexpr uint64_t mask = (uint64_t{1} << kIndexBits) - 1;
    uint64_t s = state_.load(std::memory_order_acquire);
    for (;;) {
      if (Generation(s) != generation || (s & mask) >= (s >> kIndexBits & mask)) return;
      if (!state_.compare_exchange_weak(s, s + 1, std::memory_order_acq_rel, std::memory_order_acquire)) continue;
      job_(ctx_, static_cast<int>(s & mask));
      done_.fetch_add(1, std::memory_order_release);
      s = state_.load(std::memory_order_acquire);
    }
  }

  void WorkerLoop(int index, uint64_t seen) {
    for (;;) {
      uint64_t word = Generation(state_.load(std::memory_order_acquire));
      const auto until = std::chrono::steady_clock::now() + kSpin;
      // Yielding, not pausing: a thread that wants this core (the engine's garbage collector, say) gets it.
      for (int spin = 0; word == seen; spin++) {
        std::this_thread::yield();
        word = Generation(state_.load(std::memory_order_acquire));
        if (spin % 16 == 15 && std::chrono::steady_clock::now() > until) break;
      }
      if (word == seen) {
        std::unique_lock<std::mutex> lock(mutex_);
        sleepers_.fetch_add(1, std::memory_order_seq_cst);
        wake_.wait(lock, [&] { return (word = Generation(state_.load(std::memory_order_seq_cst))) != seen; });
        sleepers_.fetch_sub(1, std::memory_order_relaxed);
      }
      seen = word;
      // Only the run's helpers take part: a pool set to fewer threads keeps its other workers idle.
      if (index < Helpers(state_.load(std::memory_order_acquire))) Work(seen);
    }
  }

  // How long a worker spins before it sleeps: longer than the gaps between one step's kernels.
  static constexpr std::chrono::microseconds kSpin{2000};

  int threads_ = 1;
  int started_ = 0;
  void (*job_)(const void*, int) = nullptr;
  const void* ctx_ = nullptr;
  std::atomic<uint64_t> state_{0};
  std::atomic<int> done_{0};
  std::atomic<int> sleepers_{0};
  std::mutex mutex_;
  std::condition_variable wake_;
};

}  // namespace zerovar
