// sqsrelay::producer against a real `sqsrelay serve --in-memory` child process.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "sqsrelay/producer.h"

namespace {

using namespace std::chrono_literals;

int free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

bool can_connect(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(static_cast<uint16_t>(port));
  bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  ::close(fd);
  return ok;
}

// One server process per test; `faults`: a --fault rule, or empty.
class server {
 public:
  explicit server(const std::string& faults = {}) : port_(free_port()) {
    std::string listen = "127.0.0.1:" + std::to_string(port_);
    pid_ = ::fork();
    if (pid_ == 0) {
      std::vector<const char*> argv{SQSRELAY_SERVER_BIN, "--log-level", "warn", "serve",
                                    "--in-memory", "--listen", listen.c_str(),
                                    "--ingest-listen", "off", "--threads", "1"};
      if (!faults.empty()) {
        argv.push_back("--fault");
        argv.push_back(faults.c_str());
      }
      argv.push_back(nullptr);
      ::execv(argv[0], const_cast<char* const*>(argv.data()));
      ::_exit(127);
    }
    for (int i = 0; i < 200 && !can_connect(port_); ++i) std::this_thread::sleep_for(25ms);
  }
  ~server() {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  // Creates a queue through a producer-independent path: the CLI of the same build.
  void create_queue(const std::string& name) const {
    std::string cmd = std::string(SQSRELAY_SERVER_BIN) + " queue create " + name +
                      " --endpoint-url " + url() + " >/dev/null";
    ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  }

 private:
  int port_;
  pid_t pid_ = -1;
};

sqsrelay::producer_options options(const server& s) {
  sqsrelay::producer_options o;
  o.endpoint_url = s.url();
  o.region = "us-east-1";
  o.access_key_id = "x";
  o.secret_access_key = "x";
  o.linger = 1ms;
  return o;
}

// Requests still on the wire when close_timeout passes: every send ends `abandoned` with a
// reason, and the destructor returns without touching freed memory (ASan/valgrind caught a
// use-after-free here: suspended requests returned connections to a destroyed pool).
TEST(Producer, DestructorAbandonsRequestsStillOnTheWire) {
  server s("queue=slow,latency=3s");
  s.create_queue("slow");
  std::vector<std::future<sqsrelay::send_result>> fs;
  auto t0 = std::chrono::steady_clock::now();
  {
    auto o = options(s);
    o.close_timeout = 500ms;
    sqsrelay::producer p(o);
    for (int i = 0; i < 50; ++i) fs.push_back(p.send("slow", "m" + std::to_string(i)));
    std::this_thread::sleep_for(300ms);  // the batches are on the wire now
  }
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 2500ms);
  for (auto& f : fs) {
    ASSERT_EQ(f.wait_for(0s), std::future_status::ready);
    auto r = f.get();
    EXPECT_EQ(r.status, sqsrelay::send_status::abandoned);
    EXPECT_EQ(r.code, "Abandoned");
    EXPECT_NE(r.detail.find("stop deadline"), std::string::npos) << r.detail;
  }
}

// A callback that throws affects nothing else: the other messages of its batch complete.
TEST(Producer, ACallbackThatThrowsDoesNotLoseTheRestOfItsBatch) {
  server s;
  s.create_queue("q");
  sqsrelay::producer p(options(s));
  std::atomic<int> called{0};
  for (int i = 0; i < 10; ++i)
    p.send("q", "m" + std::to_string(i), [&called, i](const sqsrelay::send_result& r) {
      ++called;
      if (i % 3 == 0) throw std::runtime_error("user bug");
      EXPECT_TRUE(r.ok()) << r.reason;
    });
  auto last = p.send("q", "last");
  ASSERT_TRUE(p.flush(10s));
  EXPECT_EQ(called.load(), 10);
  EXPECT_TRUE(last.get().ok());
  auto st = p.stats();
  EXPECT_EQ(st.delivered, 11u);
  EXPECT_EQ(st.pending, 0u);
}

// send() from a callback while the pending limit is reached must not deadlock: the I/O
// thread that runs callbacks is the one that makes room.
TEST(Producer, SendFromACallbackUnderBackPressureDoesNotDeadlock) {
  server s;
  s.create_queue("q");
  auto o = options(s);
  o.max_pending_messages = 4;
  sqsrelay::producer p(o);
  std::atomic<int> follow_ups{0};
  for (int i = 0; i < 40; ++i)
    p.send("q", "m" + std::to_string(i), [&p, &follow_ups](const sqsrelay::send_result& r) {
      if (r.ok())
        p.send("q", "follow-up", [&follow_ups](const sqsrelay::send_result& f) {
          if (f.ok()) ++follow_ups;
        });
    });
  ASSERT_TRUE(p.flush(20s));
  EXPECT_EQ(follow_ups.load(), 40);
  EXPECT_EQ(p.stats().delivered, 80u);
}

}  // namespace
