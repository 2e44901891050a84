// The WAL's durability completion: a move-only `void(error_code)` callable with inline
// storage (base/move_only_callback.h), so registering a waiter allocates nothing.
#pragma once

#include "base/move_only_callback.h"
#include "base/result.h"

namespace sqsrelay::wal {

using durable_callback = move_only_callback<error_code>;

}  // namespace sqsrelay::wal
