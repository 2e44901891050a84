#include "aws/credentials.h"

#include <openssl/crypto.h>

#include <ostream>
#include <utility>

namespace sqsrelay::aws {

secret_string::secret_string(std::string s) : bytes_(s.begin(), s.end()) {
  if (!s.empty()) OPENSSL_cleanse(s.data(), s.size());
}

secret_string& secret_string::operator=(secret_string other) noexcept {
  bytes_.swap(other.bytes_);  // `other` now holds the old bytes and wipes them as it dies
  return *this;
}

secret_string::~secret_string() {
  if (!bytes_.empty()) OPENSSL_cleanse(bytes_.data(), bytes_.size());
}

void PrintTo(const secret_string& s, std::ostream* os) {
  *os << "secret_string(<redacted, " << s.size() << " bytes>)";
}

void credential_store::add(credentials c) {
  std::string key = c.access_key_id;
  by_key_id_.insert_or_assign(std::move(key), std::move(c));
}

const credentials* credential_store::find(std::string_view access_key_id) const {
  auto it = by_key_id_.find(access_key_id);
  return it == by_key_id_.end() ? nullptr : &it->second;
}

}  // namespace sqsrelay::aws
