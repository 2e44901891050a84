// http_floor: the cheapest possible HTTP/1.1 responder, to measure what one request costs
// on this machine before any server does any work: loopback TCP, epoll and the load
// generator. bench/ingest_bench.py drives it with the same wrk load as ingest (b) and
// reports its requests/s and CPU per request as the ceiling (b) can reach here.
//
// It is deliberately not built on Asio or Beast (the project's HTTP stack): the point is the
// floor under any framework, so it is a bare epoll loop on one thread. It
// frames requests correctly (header block, Content-Length bodies, pipelining, partial
// reads) and answers each with a fixed `200 {}`; it parses nothing else and stores
// nothing. Chunked bodies are not supported (the connection is closed). Loopback only.
//
//   http_floor PORT      (prints "listening" once ready; runs until killed)
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>

namespace {

constexpr std::string_view reply =
    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}";
constexpr size_t max_header_bytes = 64 * 1024;

// One connection's unparsed input and how much body is still to be skipped.
struct conn {
  std::string in;
  size_t skip = 0;
};

// The Content-Length of a header block (case-insensitive name), 0 if absent; -1 if the
// request uses a transfer coding this responder does not frame.
long content_length(std::string_view head) {
  long length = 0;
  size_t pos = 0;
  while ((pos = head.find("\r\n", pos)) != std::string_view::npos) {
    pos += 2;
    std::string_view line = head.substr(pos, head.find("\r\n", pos) - pos);
    auto colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    std::string name(line.substr(0, colon));
    for (char& c : name) c = static_cast<char>(c | 0x20);
    std::string_view value = line.substr(colon + 1);
    while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
    if (name == "transfer-encoding") return -1;
    if (name == "content-length")
      std::from_chars(value.data(), value.data() + value.size(), length);
  }
  return length;
}

// Consumes complete requests from `c`; returns how many were complete, -1 on bad framing.
long consume(conn& c) {
  long requests = 0;
  size_t at = 0;
  for (;;) {
    if (c.skip) {
      size_t n = std::min(c.skip, c.in.size() - at);
      at += n, c.skip -= n;
      if (c.skip) break;
      ++requests;
    }
    auto end = c.in.find("\r\n\r\n", at);
    if (end == std::string::npos) {
      if (c.in.size() - at > max_header_bytes) return -1;
      break;
    }
    long length = content_length(std::string_view(c.in).substr(at, end - at));
    if (length < 0) return -1;
    at = end + 4;
    if (length == 0) {
      ++requests;
      continue;
    }
    c.skip = static_cast<size_t>(length);
  }
  c.in.erase(0, at);
  return requests;
}

// Reads what is available and answers each complete request; false when the connection is
// finished. Level-triggered: one read per readiness event (a full buffer reads again), so
// there is no extra read that ends in EAGAIN.
bool serve(int fd, conn& c, std::string& out) {
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n > 0) {
      c.in.append(buf, static_cast<size_t>(n));
      if (static_cast<size_t>(n) < sizeof buf) break;
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) break;
    return false;  // EOF or error
  }
  long requests = consume(c);
  if (requests < 0) return false;
  out.clear();
  for (long i = 0; i < requests; ++i) out += reply;
  // Replies are tiny; a full socket buffer here means the peer stopped reading.
  return out.empty() || ::write(fd, out.data(), out.size()) == static_cast<ssize_t>(out.size());
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: http_floor PORT\n");
    return 2;
  }
  int ls = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  int one = 1;
  ::setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(std::atoi(argv[1])));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(ls, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(ls, 4096)) {
    std::perror("http_floor: bind/listen");
    return 1;
  }
  int ep = ::epoll_create1(0);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = ls;
  ::epoll_ctl(ep, EPOLL_CTL_ADD, ls, &ev);
  std::printf("listening\n");
  std::fflush(stdout);
  std::unordered_map<int, std::unique_ptr<conn>> conns;
  std::string out;
  epoll_event events[256];
  for (;;) {
    int n = ::epoll_wait(ep, events, 256, -1);
    for (int i = 0; i < n; ++i) {
      int fd = events[i].data.fd;
      if (fd == ls) {
        for (int c; (c = ::accept4(ls, nullptr, nullptr, SOCK_NONBLOCK)) >= 0;) {
          ::setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
          epoll_event e{};
          e.events = EPOLLIN;
          e.data.fd = c;
          ::epoll_ctl(ep, EPOLL_CTL_ADD, c, &e);
          conns[c] = std::make_unique<conn>();
        }
        continue;
      }
      if (!serve(fd, *conns[fd], out)) {
        conns.erase(fd);
        ::close(fd);
      }
    }
  }
}
