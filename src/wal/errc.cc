#include "wal/errc.h"

#include <string>

namespace sqsrelay::wal {
namespace {

// boost::system::error_category has a protected non-virtual destructor by design (categories
// are never deleted through a base pointer), which -Wnon-virtual-dtor cannot see.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wnon-virtual-dtor"
class category final : public boost::system::error_category {
 public:
  const char* name() const noexcept override { return "sqsrelay.wal"; }

  std::string message(int ev) const override {
    switch (static_cast<errc>(ev)) {
      case errc::log_failed:
        return "log failed after an I/O error; reopen to recover";
      case errc::replay_not_allowed:
        return "replay is allowed once, before the first append";
      case errc::record_too_large:
        return "record too large";
      case errc::bad_location:
        return "location is not written data of a live segment";
      case errc::bad_lsn:
        return "lsn was never appended";
      case errc::unsupported_version:
        return "segment written by a newer format version";
      case errc::locked:
        return "log directory is locked by another process";
      case errc::short_read:
        return "file shorter than expected";
      case errc::segments_exhausted:
        return "no segment numbers left";
      case errc::crashed:
        return "simulated crash: file system is down";
    }
    return "unknown wal error";
  }
};
#pragma GCC diagnostic pop

}  // namespace

const boost::system::error_category& wal_category() noexcept {
  static const category c;
  return c;
}

}  // namespace sqsrelay::wal
