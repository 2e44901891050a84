// The I/O threads of a process (`serve`, `run`): one single-threaded io_context per thread,
// the model http/server.h expects, with a graceful stop that waits for requests in progress.
//
// Declare the pool after everything that handlers running on it may touch: destroying it
// destroys unfinished coroutines, which must still find those objects alive.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

namespace sqsrelay::app {

class io_pool {
 public:
  explicit io_pool(unsigned threads);  // 0: one per core
  ~io_pool();
  io_pool(const io_pool&) = delete;
  io_pool& operator=(const io_pool&) = delete;

  const std::vector<boost::asio::io_context*>& workers() const { return workers_; }
  boost::asio::io_context& first() { return *workers_.front(); }
  unsigned size() const { return static_cast<unsigned>(workers_.size()); }

  // Runs every context, the first on the calling thread, until they stop.
  void run();
  // From a handler on first(): stops every context once `busy()` (e.g. requests read and not
  // yet answered) reaches 0 or `deadline` passes, checking every 10 ms.
  void stop_when_idle(std::function<int64_t()> busy,
                      std::chrono::steady_clock::time_point deadline);

 private:
  void check_idle();

  std::vector<std::unique_ptr<boost::asio::io_context>> contexts_;
  std::vector<boost::asio::io_context*> workers_;
  std::unique_ptr<boost::asio::steady_timer> drain_;
  std::function<int64_t()> busy_;
  std::chrono::steady_clock::time_point deadline_;
};

}  // namespace sqsrelay::app
