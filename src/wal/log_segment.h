// One segment of a log (private to the log's .cc files).
#pragma once

#include <cstdint>
#include <memory>

#include "wal/env.h"
#include "wal/log.h"

namespace sqsrelay::wal {

// The log's mutex guards the mutable fields. A sealed segment (not the active one) is never
// written again; its file stays open until the segment is deleted and no reader holds it.
struct log::segment_state {
  uint32_t number = 0;
  std::unique_ptr<file> f;
  uint64_t size = 0;         // bytes written and readable, header included
  uint64_t refs = 0;         // live records
  uint64_t released_at = 0;  // last_lsn when refs last fell to zero
  bool unsynced = false;     // listed in log::unsynced_
  bool prewritten = false;   // the file was preallocated (zeros past `size`)
  bool damaged_header = false;  // its header bytes are damage; sealed, records still read
};

}  // namespace sqsrelay::wal
