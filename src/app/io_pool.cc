#include "app/io_pool.h"

#include <thread>

#include <boost/asio/executor_work_guard.hpp>
#include <spdlog/spdlog.h>

namespace sqsrelay::app {

namespace asio = boost::asio;

io_pool::io_pool(unsigned threads) {
  if (threads == 0) threads = std::max(1u, std::thread::hardware_concurrency());
  for (unsigned i = 0; i < threads; ++i) {
    contexts_.push_back(std::make_unique<asio::io_context>(1));
    workers_.push_back(contexts_.back().get());
  }
  drain_ = std::make_unique<asio::steady_timer>(first());
}

io_pool::~io_pool() {
  drain_.reset();
  // The first context last: handlers on the others may hold its executor.
  while (!contexts_.empty()) contexts_.pop_back();
}

void io_pool::run() {
  // Keep the contexts running while they have no connections yet.
  std::vector<asio::executor_work_guard<asio::io_context::executor_type>> guards;
  for (auto* w : workers_) guards.push_back(asio::make_work_guard(*w));
  std::vector<std::thread> threads;
  for (size_t i = 1; i < workers_.size(); ++i)
    threads.emplace_back([w = workers_[i]] { w->run(); });
  first().run();
  for (auto& t : threads) t.join();
}

void io_pool::stop_when_idle(std::function<int64_t()> busy,
                             std::chrono::steady_clock::time_point deadline) {
  busy_ = std::move(busy);
  deadline_ = deadline;
  check_idle();
}

void io_pool::check_idle() {
  int64_t n = busy_();
  if (n <= 0 || std::chrono::steady_clock::now() >= deadline_) {
    if (n > 0) spdlog::warn("stopping with {} requests unanswered", n);
    for (auto* w : workers_) w->stop();
    return;
  }
  drain_->expires_after(std::chrono::milliseconds(10));
  drain_->async_wait([this](boost::system::error_code ec) {
    if (!ec) check_idle();
  });
}

}  // namespace sqsrelay::app
