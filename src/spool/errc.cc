#include "spool/errc.h"

#include <string>

namespace sqsrelay::spool {
namespace {

// See wal/errc.cc: error_category's destructor is protected and non-virtual by design.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wnon-virtual-dtor"
class category final : public boost::system::error_category {
 public:
  const char* name() const noexcept override { return "sqsrelay.spool"; }

  std::string message(int ev) const override {
    switch (static_cast<errc>(ev)) {
      case errc::spool_full:
        return "spool full: disk budget reached, retry later";
      case errc::spool_failed:
        return "spool failed after an I/O error; reopen to recover";
      case errc::record_too_large:
        return "records of one append exceed the spool's limit";
      case errc::not_read:
        return "seq was not handed out by the reader";
    }
    return "unknown spool error";
  }
};
#pragma GCC diagnostic pop

}  // namespace

const boost::system::error_category& spool_category() noexcept {
  static const category c;
  return c;
}

}  // namespace sqsrelay::spool
