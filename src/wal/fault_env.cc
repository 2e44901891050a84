#include "wal/fault_env.h"

#include <algorithm>

#include "wal/errc.h"
#include "wal/path_key.h"

namespace sqsrelay::wal {

struct fault_env::tracked {
  std::string path;
  std::string synced;  // contents as of the last successful sync; guarded by fault_env::mu_
};

// Forwards to a base file under the env's mutex, so a crash is atomic with respect to
// every operation. Handles opened before a crash fail forever after it.
class fault_env::fault_file final : public file {
 public:
  fault_file(fault_env& e, std::unique_ptr<file> base, std::shared_ptr<tracked> t, uint64_t ep)
      : env_(e), base_(std::move(base)), tracked_(std::move(t)), epoch_(ep) {}

  result<void> write_at(uint64_t offset, std::span<const char> data) override {
    std::lock_guard lock(env_.mu_);
    size_t partial = 0;
    if (error_code ec = env_.begin_op(op::write, epoch_, &partial)) {
      partial = std::min(partial, data.size());
      if (partial > 0) (void)base_->write_at(offset, data.first(partial));
      return ec;
    }
    return base_->write_at(offset, data);
  }

  result<void> read_at(uint64_t offset, std::span<char> out) const override {
    std::lock_guard lock(env_.mu_);
    if (error_code ec = env_.check_up(epoch_)) return ec;
    return base_->read_at(offset, out);
  }

  result<void> sync() override {
    std::unique_lock lock(env_.mu_);
    env_.cv_.wait(lock, [&] { return !env_.held_ || env_.down_ || env_.epoch_ != epoch_; });
    if (error_code ec = env_.begin_op(op::sync, epoch_, nullptr)) return ec;
    SQSRELAY_TRY(n, base_->size());
    std::string contents(n, '\0');
    if (auto r = base_->read_at(0, contents); !r) return r;
    tracked_->synced = std::move(contents);
    return {};
  }

  result<void> truncate(uint64_t size) override {
    std::lock_guard lock(env_.mu_);
    if (error_code ec = env_.begin_op(op::truncate, epoch_, nullptr)) return ec;
    return base_->truncate(size);
  }

  result<uint64_t> size() const override {
    std::lock_guard lock(env_.mu_);
    if (error_code ec = env_.check_up(epoch_)) return ec;
    return base_->size();
  }

 private:
  fault_env& env_;
  std::unique_ptr<file> base_;
  std::shared_ptr<tracked> tracked_;
  const uint64_t epoch_;
};

fault_env::fault_env() : base_(make_mem_env()) {}
fault_env::~fault_env() = default;

void fault_env::inject(op o, uint64_t nth, error_code ec, size_t partial_bytes) {
  std::lock_guard lock(mu_);
  faults_.push_back({o, nth, ec, partial_bytes});
}

void fault_env::clear_faults() {
  std::lock_guard lock(mu_);
  faults_.clear();
}

uint64_t fault_env::calls(op o) const {
  std::lock_guard lock(mu_);
  return counts_[static_cast<size_t>(o)];
}

void fault_env::hold_syncs() {
  std::lock_guard lock(mu_);
  held_ = true;
}

void fault_env::release_syncs() {
  std::lock_guard lock(mu_);
  held_ = false;
  cv_.notify_all();
}

void fault_env::crash() {
  std::lock_guard lock(mu_);
  crash_locked();
}

void fault_env::restart() {
  std::lock_guard lock(mu_);
  down_ = false;
  held_ = false;
  crash_countdown_ = 0;
}

void fault_env::crash_after(uint64_t k) {
  std::lock_guard lock(mu_);
  crash_countdown_ = k + 1;
}

void fault_env::set_available_bytes(uint64_t n) {
  std::lock_guard lock(mu_);
  available_ = n;
}

result<uint64_t> fault_env::available_bytes(const std::filesystem::path&) {
  std::lock_guard lock(mu_);
  if (error_code ec = check_up(epoch_)) return ec;
  return available_;
}

bool fault_env::is_down() const {
  std::lock_guard lock(mu_);
  return down_;
}

error_code fault_env::check_up(uint64_t epoch) const {
  if (down_ || epoch != epoch_) return errc::crashed;
  return {};
}

error_code fault_env::begin_op(op o, uint64_t epoch, size_t* partial_bytes) {
  if (error_code ec = check_up(epoch)) return ec;
  if (crash_countdown_ != 0 && --crash_countdown_ == 0) {
    crash_locked();
    return errc::crashed;
  }
  uint64_t n = ++counts_[static_cast<size_t>(o)];
  for (const fault& f : faults_) {
    if (f.o != o || f.nth != n) continue;
    if (partial_bytes) *partial_bytes = f.partial_bytes;
    return f.ec;
  }
  return {};
}

// Rebuilds the base file system from the durable view: names present at the last sync_dir
// of their directory, each with its last synced contents. Files get new handles and
// tracking records, so writes through handles from before the crash reach nothing.
void fault_env::crash_locked() {
  for (const auto& [k, t] : current_) (void)base_->remove_file(k);
  std::map<std::string, std::shared_ptr<tracked>> rebuilt;
  for (const auto& [k, t] : durable_) {
    auto f = base_->create_file(k);
    if (f) (void)(*f)->write_at(0, t->synced);
    rebuilt[k] = std::make_shared<tracked>(tracked{k, t->synced});
  }
  current_ = rebuilt;
  durable_ = std::move(rebuilt);
  ++epoch_;
  down_ = true;
  cv_.notify_all();
}

std::unique_ptr<file> fault_env::wrap(std::unique_ptr<file> f, std::shared_ptr<tracked> t) {
  return std::make_unique<fault_file>(*this, std::move(f), std::move(t), epoch_);
}

result<std::unique_ptr<file>> fault_env::create_file(const std::filesystem::path& p) {
  std::lock_guard lock(mu_);
  if (error_code ec = begin_op(op::create, epoch_, nullptr)) return ec;
  SQSRELAY_TRY(f, base_->create_file(p));
  auto t = std::make_shared<tracked>(tracked{path_key(p), {}});
  current_[t->path] = t;
  return wrap(std::move(f), std::move(t));
}

result<std::unique_ptr<file>> fault_env::open_file(const std::filesystem::path& p) {
  std::lock_guard lock(mu_);
  if (error_code ec = check_up(epoch_)) return ec;
  SQSRELAY_TRY(f, base_->open_file(p));
  auto it = current_.find(path_key(p));
  if (it == current_.end()) return make_error_code(boost::system::errc::no_such_file_or_directory);
  return wrap(std::move(f), it->second);
}

result<std::vector<std::string>> fault_env::list_dir(const std::filesystem::path& dir) {
  std::lock_guard lock(mu_);
  if (error_code ec = check_up(epoch_)) return ec;
  return base_->list_dir(dir);
}

result<void> fault_env::remove_file(const std::filesystem::path& p) {
  std::lock_guard lock(mu_);
  if (error_code ec = begin_op(op::remove, epoch_, nullptr)) return ec;
  if (auto r = base_->remove_file(p); !r) return r;
  current_.erase(path_key(p));
  return {};
}

result<void> fault_env::rename_file(const std::filesystem::path& from,
                                    const std::filesystem::path& to) {
  std::lock_guard lock(mu_);
  if (error_code ec = begin_op(op::rename, epoch_, nullptr)) return ec;
  if (auto r = base_->rename_file(from, to); !r) return r;
  auto it = current_.find(path_key(from));
  if (it == current_.end()) return {};
  std::shared_ptr<tracked> t = std::move(it->second);
  current_.erase(it);
  current_[path_key(to)] = std::move(t);
  return {};
}

// Makes the current set of names in `dir` the durable one.
result<void> fault_env::sync_dir(const std::filesystem::path& dir) {
  std::lock_guard lock(mu_);
  if (error_code ec = begin_op(op::sync_dir, epoch_, nullptr)) return ec;
  const std::string d = path_key(dir);
  std::erase_if(durable_, [&](const auto& kv) { return parent_key(kv.first) == d; });
  for (const auto& [k, t] : current_) {
    if (parent_key(k) == d) durable_[k] = t;
  }
  return {};
}

result<void> fault_env::create_dir(const std::filesystem::path& dir) {
  std::lock_guard lock(mu_);
  if (error_code ec = check_up(epoch_)) return ec;
  return base_->create_dir(dir);
}

result<std::unique_ptr<dir_lock>> fault_env::lock_file(const std::filesystem::path& p) {
  std::lock_guard lock(mu_);
  if (error_code ec = check_up(epoch_)) return ec;
  return base_->lock_file(p);
}

}  // namespace sqsrelay::wal
