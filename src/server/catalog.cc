#include "server/catalog.h"

#include <fcntl.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include <boost/json.hpp>

namespace sqsrelay::server {

namespace json = boost::json;

namespace {

json::object to_json(const queue_metadata& q) {
  json::object attrs, tags;
  for (auto& [k, v] : q.attributes.settable()) attrs[k] = v;
  for (auto& [k, v] : q.tags) tags[k] = v;
  return {{"id", q.id},         {"name", q.name},      {"created", q.created_s},
          {"modified", q.modified_s}, {"attributes", attrs}, {"tags", tags}};
}

bool from_json(const json::value& v, queue_metadata& q) {
  if (!v.is_object()) return false;
  auto& o = v.as_object();
  auto* id = o.if_contains("id");
  auto* name = o.if_contains("name");
  if (!id || !id->is_number() || !name || !name->is_string()) return false;
  q.id = id->to_number<uint64_t>();
  q.name = std::string(name->as_string());
  if (auto* c = o.if_contains("created"); c && c->is_number()) q.created_s = c->to_number<int64_t>();
  if (auto* m = o.if_contains("modified"); m && m->is_number())
    q.modified_s = m->to_number<int64_t>();
  if (auto* a = o.if_contains("attributes"); a && a->is_object())
    for (auto& [k, val] : a->as_object())
      if (val.is_string()) (void)q.attributes.set(k, val.as_string());
  if (auto* t = o.if_contains("tags"); t && t->is_object())
    for (auto& [k, val] : t->as_object())
      if (val.is_string()) q.tags[std::string(k)] = std::string(val.as_string());
  return true;
}

result<void> sync_fd_path(const std::filesystem::path& p, int flags) {
  int fd = ::open(p.c_str(), flags | O_CLOEXEC);
  if (fd < 0) return error_code(errno, boost::system::system_category());
  int rc = ::fsync(fd);
  int err = errno;
  ::close(fd);
  if (rc != 0) return error_code(err, boost::system::system_category());
  return {};
}

}  // namespace

result<catalog> load_catalog(const std::filesystem::path& file, std::string* error) {
  catalog c;
  std::ifstream in(file, std::ios::binary);
  if (!in) return c;
  std::stringstream ss;
  ss << in.rdbuf();
  boost::system::error_code ec;
  auto v = json::parse(ss.str(), ec);
  if (ec || !v.is_object()) {
    *error = file.string() + ": not valid JSON (" + ec.message() + ")";
    return error_code(EINVAL, boost::system::generic_category());
  }
  auto& o = v.as_object();
  if (auto* n = o.if_contains("next_queue_id"); n && n->is_number())
    c.next_queue_id = n->to_number<uint64_t>();
  if (auto* qs = o.if_contains("queues"); qs && qs->is_array()) {
    for (auto& qv : qs->as_array()) {
      queue_metadata q;
      if (!from_json(qv, q)) {
        *error = file.string() + ": a queue entry is malformed";
        return error_code(EINVAL, boost::system::generic_category());
      }
      c.queues.push_back(std::move(q));
    }
  }
  return c;
}

result<void> save_catalog(const std::filesystem::path& file, const catalog& c) {
  json::array qs;
  for (auto& q : c.queues) qs.push_back(to_json(q));
  json::object root{{"version", 1}, {"next_queue_id", c.next_queue_id}, {"queues", qs}};
  std::string text = json::serialize(root);
  auto tmp = file;
  tmp += ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return error_code(errno, boost::system::system_category());
  size_t off = 0;
  while (off < text.size()) {
    ssize_t n = ::write(fd, text.data() + off, text.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int err = errno;
      ::close(fd);
      return error_code(err, boost::system::system_category());
    }
    off += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0) {
    int err = errno;
    ::close(fd);
    return error_code(err, boost::system::system_category());
  }
  ::close(fd);
  if (::rename(tmp.c_str(), file.c_str()) != 0)
    return error_code(errno, boost::system::system_category());
  return sync_fd_path(file.parent_path(), O_RDONLY | O_DIRECTORY);
}

}  // namespace sqsrelay::server
