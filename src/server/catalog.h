// Queue metadata on disk: `catalog.json` in the data directory, rewritten whole and
// atomically (write temp, fsync, rename, fsync dir) on every create/delete/attribute/tag
// change. Metadata changes are rare; messages go through the WAL instead.
#pragma once

#include <filesystem>
#include <vector>

#include "base/result.h"
#include "server/queue.h"

namespace sqsrelay::server {

struct catalog {
  uint64_t next_queue_id = 1;
  std::vector<queue_metadata> queues;
};

// A missing file is an empty catalog; a corrupt one is an error naming the file.
result<catalog> load_catalog(const std::filesystem::path& file, std::string* error);
// Durable when it returns success.
result<void> save_catalog(const std::filesystem::path& file, const catalog& c);

}  // namespace sqsrelay::server
