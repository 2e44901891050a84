// The completion of spool::append: a move-only `void(error_code, uint64_t first_seq)`
// callable with inline storage (base/move_only_callback.h), so an append allocates nothing
// for its callback.
#pragma once

#include <cstdint>

#include "base/move_only_callback.h"
#include "base/result.h"

namespace sqsrelay::spool {

using append_callback = move_only_callback<error_code, uint64_t>;

}  // namespace sqsrelay::spool
