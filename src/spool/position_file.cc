#include "spool/position_file.h"

#include <algorithm>
#include <boost/system/errc.hpp>

#include "spool/codec.h"
#include "spool/spool_format.h"

namespace sqsrelay::spool {

result<std::unique_ptr<position_file>> position_file::open(wal::env& e,
                                                           const std::filesystem::path& dir,
                                                           bool sync, position_recovery* found) {
  *found = {};
  const std::filesystem::path path = dir / position_file_name;
  auto opened = e.open_file(path);
  bool created = false;
  if (!opened && opened.error() == boost::system::errc::no_such_file_or_directory) {
    opened = e.create_file(path);
    created = true;
  }
  if (!opened) return opened.error();
  std::unique_ptr<position_file> p(new position_file(std::move(*opened), sync));
  bool short_file = created;
  if (!created) {
    if (auto r = p->read(found, &short_file); !r) return r.error();
  }
  found->created = short_file;
  // A new or short file gets both slots written; a full one is only synced, because the
  // page cache may hold a slot the previous process wrote but never synced.
  if (short_file) {
    std::string both(position_file_size, '\0');
    for (uint64_t gen : {p->generation_ + 1, p->generation_ + 2}) {
      const position_slot slot = encode_position_slot({gen, p->position_});
      std::copy(slot.begin(), slot.end(),
                both.begin() + (gen % position_slots) * position_slot_size);
    }
    if (auto r = p->f_->write_at(0, both); !r) return r.error();
    p->generation_ += 2;
  }
  if (sync) {
    if (auto r = p->f_->sync(); !r) return r.error();
    if (created) {
      if (auto r = e.sync_dir(dir); !r) return r.error();
    }
  }
  return p;
}

result<void> position_file::read(position_recovery* found, bool* short_file) {
  SQSRELAY_TRY(size, f_->size());
  std::string bytes(std::min<uint64_t>(size, position_file_size), '\0');
  if (auto r = f_->read_at(0, bytes); !r) return r;
  bool any = false;
  for (size_t slot = 0; slot * position_slot_size < bytes.size(); ++slot) {
    const auto v =
        decode_position_slot(std::span<const char>(bytes).subspan(slot * position_slot_size));
    if (!v || (any && v->generation <= generation_)) continue;
    any = true;
    generation_ = v->generation;
    position_ = v->position;
  }
  *short_file = size < position_file_size;
  // A short file is a creation torn by a crash (nothing was ever stored there but 0); a
  // full one with no valid slot was damaged.
  found->corrupt = !any && !*short_file;
  found->position = position_;
  return {};
}

result<void> position_file::store(uint64_t position) {
  const uint64_t gen = generation_ + 1;
  const position_slot s = encode_position_slot({gen, position});
  if (auto r = f_->write_at((gen % position_slots) * position_slot_size, s); !r) return r;
  if (sync_) {
    if (auto r = f_->sync(); !r) return r;
  }
  generation_ = gen;
  position_ = position;
  return {};
}

}  // namespace sqsrelay::spool
