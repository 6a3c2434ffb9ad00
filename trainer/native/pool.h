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
      const uint64_t seen = generation_.load(std::memory_order_acquire);
      std::thread([this, index, seen] { WorkerLoop(index, seen); }).detach();
    }
  }

  // Runs task(0..count-1), each exactly once, on up to threads() threads. Which thread runs a task never changes
  // what the task computes: every task writes its own outputs.
  template <typename Task>
  void Run(int count, const Task& task) {
    const int helpers = std::min(threads_, count) - 1;
    if (helpers <= 0) {
      for (int i = 0; i < count; i++) task(i);
      return;
    }
    job_ = [](const void* ctx, int i) { (*static_cast<const Task*>(ctx))(i); };
    ctx_ = &task;
    count_ = count;
    next_.store(0, std::memory_order_relaxed);
    pending_.store(helpers, std::memory_order_relaxed);
    // The generation word carries the helper count, so a worker reads both at once: one that is not a helper
    // this time never reads the job, which the next Run may already be rewriting.
    const uint64_t word = ((generation_.load(std::memory_order_relaxed) >> 8) + 1) << 8 | static_cast<uint64_t>(helpers);
    generation_.store(word, std::memory_order_seq_cst);
    if (sleepers_.load(std::memory_order_seq_cst) > 0) {
      std::lock_guard<std::mutex> lock(mutex_);
      wake_.notify_all();
    }
    Work();
    for (int spin = 0; pending_.load(std::memory_order_acquire) != 0; spin++) {
      if (spin < 100000) Pause();
      else std::this_thread::yield();
    }
  }

 private:
  Pool() = default;

  static void Pause() {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#else
    std::this_thread::yield();
#endif
  }

  void Work() {
    for (int i; (i = next_.fetch_add(1, std::memory_order_relaxed)) < count_;) job_(ctx_, i);
  }

  void WorkerLoop(int index, uint64_t seen) {
    for (;;) {
      uint64_t word = generation_.load(std::memory_order_acquire);
      const auto until = std::chrono::steady_clock::now() + kSpin;
      // Yielding, not pausing: a thread that wants this core (the engine's garbage collector, say) gets it.
      for (int spin = 0; word == seen; spin++) {
        std::this_thread::yield();
        word = generation_.load(std::memory_order_acquire);
        if (spin % 16 == 15 && std::chrono::steady_clock::now() > until) break;
      }
      if (word == seen) {
        std::unique_lock<std::mutex> lock(mutex_);
        sleepers_.fetch_add(1, std::memory_order_seq_cst);
        wake_.wait(lock, [&] { return (word = generation_.load(std::memory_order_seq_cst)) != seen; });
        sleepers_.fetch_sub(1, std::memory_order_relaxed);
      }
      seen = word;
      if (index < static_cast<int>(word & 0xff)) {
        Work();
        pending_.fetch_sub(1, std::memory_order_release);
      }
    }
  }

  // How long a worker spins before it sleeps: longer than the gaps between one step's kernels, since waking a
  // sleeping thread took some hundreds of microseconds on the virtual machines measured, more than many kernels.
  static constexpr std::chrono::microseconds kSpin{2000};

  int threads_ = 1;
  int started_ = 0;
  void (*job_)(const void*, int) = nullptr;
  const void* ctx_ = nullptr;
  int count_ = 0;
  std::atomic<int> next_{0};
  std::atomic<int> pending_{0};
  std::atomic<uint64_t> generation_{0};
  std::atomic<int> sleepers_{0};
  std::mutex mutex_;
  std::condition_variable wake_;
};

}  // namespace zerovar
