// Errors the write-ahead log reports itself. I/O failures keep their system error code
// (ENOSPC, EIO...) so callers can tell a full disk from a broken one.
#pragma once

#include <type_traits>

#include "base/result.h"

namespace sqsrelay::wal {

enum class errc {
  log_failed = 1,       // an earlier sync or unrecoverable write error; reopen to recover
  replay_not_allowed,   // replay() after the first append, or a second time
  record_too_large,     // payload longer than a u32 length can describe
  bad_location,         // read() of a range that is not written data of a live segment
  bad_lsn,              // when_durable() for an lsn that was never appended
  unsupported_version,  // a segment written by a newer format version
  locked,               // another process holds the log directory
  short_read,           // a file ended before the bytes a read asked for
  segments_exhausted,   // segment numbers would pass 2^32 - 1
  crashed,              // fault_env: the simulated machine is down
};

const boost::system::error_category& wal_category() noexcept;

inline error_code make_error_code(errc e) noexcept { return {static_cast<int>(e), wal_category()}; }

}  // namespace sqsrelay::wal

template <>
struct boost::system::is_error_code_enum<sqsrelay::wal::errc> : std::true_type {};
