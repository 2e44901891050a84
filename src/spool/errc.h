// Errors the spool reports itself. I/O failures keep their system error code.
#pragma once

#include <type_traits>

#include "base/result.h"

namespace sqsrelay::spool {

enum class errc {
  spool_full = 1,    // the disk budget (or the pending-write memory cap) is reached, or the
                     // disk is full: retry later (sources answer 429/503 + Retry-After)
  spool_failed,      // an fdatasync (or unrecoverable write) failed; reopen to recover
  record_too_large,  // one append's records exceed options::max_append_bytes
  not_read,          // mark_delivered() of a seq the reader has not handed out
};

const boost::system::error_category& spool_category() noexcept;

inline error_code make_error_code(errc e) noexcept {
  return {static_cast<int>(e), spool_category()};
}

}  // namespace sqsrelay::spool

template <>
struct boost::system::is_error_code_enum<sqsrelay::spool::errc> : std::true_type {};
